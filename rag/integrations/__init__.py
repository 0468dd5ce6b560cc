"""Drop-in retrievers for the frameworks apps already use, calling a running service over HTTP (`POST /search`):
`rag.integrations.langchain.RagServiceRetriever` and `rag.integrations.llamaindex.RagServiceRetriever`."""
