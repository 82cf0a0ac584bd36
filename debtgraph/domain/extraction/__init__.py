"""Invoice extraction (PRODUCT.md §4): a PDF to a reviewable ``CreateReceivableRequest`` draft."""
