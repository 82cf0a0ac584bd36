"""OAuth: platforms, API keys, connections, codes and tokens, and the grants that issue them."""
