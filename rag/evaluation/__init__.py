"""Evaluation harness: QA (EM/F1, open and gold settings) on SQuAD-format files."""
