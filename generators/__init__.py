"""Every model the service runs, by role: `text/` (embedders, rerankers, readers, language models), `media/`
(images, captions, video, OCR) and `training/` (fine-tuning the text models); beside them, what all roles share:
the model table (`model_names`), model resolution (`resolve`, `packaged_gguf`) and the memory budget
(`model_manager`).

Nothing here knows about HTTP, settings or the index; callers pass plain arguments (a model name or path, a
device) and get typed results back. Importing the package loads nothing.
"""
