"""Local stand-ins for the shops robodash writes decisions back to, for tests, the demo and the
benchmarks (the provider has its own, `simulator/`).

One small WSGI server answers, each under its own path:

- the Shopify Admin GraphQL API: `POST /admin/api/<version>/graphql.json` with an
  `X-Shopify-Access-Token`, the `tagsAdd` and `tagsRemove` mutations, `orderUpdate` (which, as
  Shopify's does, overwrites the note or the custom attributes it is given and leaves alone the
  fields it is not) and the `order(id:)` query of an order's note and custom attributes;
- the WooCommerce REST API v3: `POST /wp-json/wc/v3/orders/<id>/notes`, `GET` of the same to list
  them, and `PUT /wp-json/wc/v3/orders/<id>` for a status, with basic auth;
- a merchant's own server receiving robodash's signed webhooks: `POST /receiver/<name>`.

The two shops also send robodash their own webhooks, signed as the real ones are (base64
HMAC-SHA256 of the body under the webhook's secret, in the shop's headers), to the address and
secret registered with `POST /_standin/webhooks {"target", "url", "secret"}`:
`POST /_standin/shopify/fulfillment` makes a fulfillment (`fulfillments/create`) or changes the
order's latest (`fulfillments/update`: `shipment_status`, `status`, `tracking_number`);
`POST /_standin/woocommerce/order-updated` sets an order's status and sends `order.updated`, as the
WooCommerce stand-in also does when robodash sets a status through its REST API; `POST
/_standin/send` sends any body under any topic (a malformed one, say). A `delivery` id given again
is a redelivery; each answer robodash gave is kept (the records' `sent`).

Each records what was written, so a test can check that a decision arrived exactly once, and can
be told to fail: a scripted run of 500s, 429s with `Retry-After`, or answers held past a client's
timeout. `/_standin/` is the control API. Credentials are checked, never echoed or logged.
"""
