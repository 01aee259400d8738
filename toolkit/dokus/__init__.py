"""Dokus (Norwegian invoicing): products, customers and invoices as DataFrames, and safe ad-hoc edits.

    import toolkit
    dk = toolkit.dokus.connect(subdomain="mittfirma", email="ole@example.no", password="…")
    products = dk.products.list(product_number="BOK-")      # DataFrame indexed by id
    edited = products.copy()
    edited["price"] = edited["price"] * Decimal("1.05")
    plan = dk.products.diff(products, edited)                # nothing sent: look at it
    dk.products.apply(plan)                                  # one result row per product

    products = dk.products.export("products.xlsx")           # … edited in Excel or LibreOffice …
    plan = dk.products.diff(products, toolkit.dokus.read_sheet("products.xlsx"))

``toolkit.dokus.AsyncClient`` is the async client underneath (``await dk.products.list()``).
"""

from .client import AsyncClient, Client, base_url_for, connect
from .edits import OUTCOMES, round_money
from .resources import RESOURCES, Resource, ResourceSpec
from .sheets import read_sheet, write_sheet

__all__ = ["connect", "AsyncClient", "Client", "Resource", "ResourceSpec", "RESOURCES", "round_money", "OUTCOMES",
           "base_url_for", "read_sheet", "write_sheet"]
