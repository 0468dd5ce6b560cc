"""Models beyond text answers: text→image, image→text captions, text→video, and OCR of page images."""
