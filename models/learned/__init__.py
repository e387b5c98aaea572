"""The learned verification stage: crops around detector hypotheses, backbone embeddings, a small trained head."""
