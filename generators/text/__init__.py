"""Models that read and write text: the embedder, the reranker, the readers (extractive, sentence, generative) and
the language models behind the generative one (llama.cpp, transformers, an OpenAI-compatible API)."""
