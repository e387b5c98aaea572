"""Monthly AWS cost of a Vigia deployment, per camera and for the fleet, from a dated price file and usage.

`estimate(usage, prices)` returns line items (service, item, quantity, unit price, USD) for one scenario;
`compare(usage, prices)` gives the edge-filtered deployment (only the gateway's candidates go up) beside
sending every clip to the cloud. `stack_usage(template, params)` reads the CloudFormation stack's
parameters and resources so the estimate and the deployment describe the same system.
"""

from __future__ import annotations

from cloud.cost.model import LineItem, Usage, compare, estimate
from cloud.cost.prices import PriceBook, default_price_file, load_prices
from cloud.cost.stack import stack_usage

__all__ = ["LineItem", "PriceBook", "Usage", "compare", "default_price_file", "estimate", "load_prices",
           "stack_usage"]
