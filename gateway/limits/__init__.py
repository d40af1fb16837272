"""What anyone may ask and keep: rate limits and quota settings (``rates``), quotas checked
against the upstream (``quotas``), and what one process can hold open (``connections``)."""
