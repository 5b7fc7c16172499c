"""Shops: orders that arrive from Shopify, WooCommerce or a merchant's own site, and the
decisions written back to them."""
