"""`decon explain`: the gates of one document, with their numbers."""
