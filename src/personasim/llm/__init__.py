"""The model boundary: call options and errors, settings, transports, retries, structured output, replay, local servers."""
