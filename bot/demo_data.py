"""A small, believable demo data set, imported through the same path as real orders."""

from __future__ import annotations

from datetime import datetime, timedelta

from workflow.orders import LineImport, OrderImport


def _line(
    sku: str, title: str, category: str, consignor: tuple[str, str], qty: int, price: int
) -> LineImport:
    return LineImport(
        sku, title, category, consignor[0], consignor[1], qty, price, price * qty // 10
    )


LIN = ("C-LIN", "林小姐 Ms Lin (vintage bags)")
ZHAO = ("C-ZHAO", "赵先生 Mr Zhao (sneakers)")
PARK = ("C-PARK", "Park Studio (ceramics)")


def demo_orders(now: datetime) -> list[OrderImport]:
    """Delivered and undelivered orders for three buyers, goods from three consignors."""

    def order(
        ref: str,
        buyer: tuple[str, str],
        lines: tuple[LineImport, ...],
        delivered_days_ago: int | None,
    ) -> OrderImport:
        paid = now - timedelta(days=(delivered_days_ago or 0) + 4)
        shipped = paid + timedelta(days=1) if delivered_days_ago is not None else None
        return OrderImport(
            order_ref=ref,
            buyer_ref=buyer[0],
            buyer_name=buyer[1],
            currency="CNY",
            paid_at=paid,
            ship_by=paid + timedelta(days=2),
            shipped_at=shipped,
            delivered_at=now - timedelta(days=delivered_days_ago)
            if delivered_days_ago is not None
            else None,
            lines=lines,
        )

    mei = ("B-MEI", "王美 Wang Mei")
    tom = ("B-TOM", "Tom Baker")
    ana = ("B-ANA", "Ana Souza")
    return [
        order(
            "SO-1001",
            mei,
            (_line("BAG-001", "Vintage leather handbag", "bags", LIN, 1, 68_000),),
            2,
        ),
        order(
            "SO-1002",
            mei,
            (_line("SNK-014", "Limited sneakers, size 42", "shoes", ZHAO, 1, 129_900),),
            3,
        ),
        order(
            "SO-1003",
            tom,
            (
                _line("CER-101", "Celadon tea bowl", "ceramics", PARK, 2, 18_800),
                _line("CER-102", "Stoneware vase", "ceramics", PARK, 1, 35_000),
            ),
            1,
        ),
        order("SO-1004", tom, (_line("BAG-007", "Canvas tote", "bags", LIN, 1, 12_000),), None),
        order(
            "SO-1005",
            ana,
            (_line("SNK-020", "Running shoes, size 38", "shoes", ZHAO, 1, 59_900),),
            5,
        ),
        order(
            "SO-1006", ana, (_line("CER-110", "Glazed plate set", "ceramics", PARK, 1, 26_000),), 10
        ),
    ]
