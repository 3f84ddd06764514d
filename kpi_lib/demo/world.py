"""The demo business's world: regions, channels, categories and their products, brands."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGIONS = ["North America", "Europe", "Asia Pacific", "Latin America", "Middle East & Africa"]
REGION_SHARE = np.array([0.34, 0.28, 0.22, 0.09, 0.07])
REGION_UTC_OFFSET = np.array([-6, 1, 8, -4, 3])  # hours: drives each region's daily rhythm

CHANNELS = ["Web", "Mobile App", "Retail Store", "Marketplace"]
# rows: regions, columns: channels
CHANNEL_SHARE = np.array(
    [
        [0.44, 0.28, 0.16, 0.12],
        [0.45, 0.30, 0.15, 0.10],
        [0.30, 0.48, 0.12, 0.10],
        [0.40, 0.32, 0.20, 0.08],
        [0.38, 0.34, 0.20, 0.08],
    ]
)


@dataclass(frozen=True)
class Category:
    name: str
    price_range: tuple[float, float]
    margin: float
    return_rate: float
    quantity_extra: float  # mean extra units beyond 1
    nouns: tuple[str, ...]


CATEGORIES = [
    Category(
        "Electronics",
        (19, 899),
        0.24,
        0.07,
        0.1,
        (
            "Wireless Earbuds",
            "Smart Watch",
            "Bluetooth Speaker",
            "4K Monitor",
            "Mechanical Keyboard",
            "USB-C Hub",
            "Power Bank",
            "Noise-Cancelling Headphones",
            "Action Camera",
            "Tablet",
        ),
    ),
    Category(
        "Home & Kitchen",
        (9, 329),
        0.42,
        0.05,
        0.3,
        (
            "Chef's Knife",
            "Cast Iron Skillet",
            "Espresso Maker",
            "Linen Sheets",
            "Air Fryer",
            "Table Lamp",
            "Storage Set",
            "Blender",
            "Throw Blanket",
            "Cookware Set",
        ),
    ),
    Category(
        "Apparel",
        (8, 179),
        0.56,
        0.14,
        0.4,
        (
            "Running Jacket",
            "Denim Jeans",
            "Wool Sweater",
            "Linen Shirt",
            "Rain Coat",
            "Chino Shorts",
            "Hoodie",
            "Sneakers",
            "Leather Belt",
            "Summer Dress",
        ),
    ),
    Category(
        "Beauty",
        (5, 89),
        0.61,
        0.04,
        0.6,
        (
            "Face Serum",
            "Hand Cream",
            "Shampoo",
            "Lip Balm",
            "Sunscreen SPF50",
            "Perfume",
            "Night Cream",
            "Body Lotion",
            "Hair Oil",
            "Cleanser",
        ),
    ),
    Category(
        "Sports & Outdoors",
        (10, 449),
        0.41,
        0.06,
        0.2,
        (
            "Yoga Mat",
            "Trail Backpack",
            "Camping Tent",
            "Water Bottle",
            "Dumbbell Set",
            "Cycling Helmet",
            "Hiking Boots",
            "Fitness Tracker",
            "Sleeping Bag",
            "Tennis Racket",
        ),
    ),
    Category(
        "Toys & Games",
        (5, 129),
        0.46,
        0.05,
        0.3,
        (
            "Building Blocks",
            "Board Game",
            "Puzzle 1000pc",
            "Plush Bear",
            "RC Car",
            "Card Game",
            "Science Kit",
            "Doll House",
            "Marble Run",
            "Art Set",
        ),
    ),
    Category(
        "Books",
        (5, 45),
        0.31,
        0.02,
        0.4,
        (
            "Cookbook",
            "Thriller Novel",
            "Travel Guide",
            "Biography",
            "Kids Picture Book",
            "Business Handbook",
            "Poetry Collection",
            "History Atlas",
            "Sci-Fi Saga",
            "Self-Help Guide",
        ),
    ),
    Category(
        "Grocery",
        (2, 32),
        0.24,
        0.01,
        1.5,
        (
            "Coffee Beans",
            "Olive Oil",
            "Dark Chocolate",
            "Green Tea",
            "Granola",
            "Pasta",
            "Honey",
            "Spice Mix",
            "Sparkling Water",
            "Nut Butter",
        ),
    ),
]
BRANDS = ("Aurora", "Nimbus", "Vertex", "Helix", "Nova", "Pulse", "Zenith", "Orchid", "Summit", "Ember")
AVG_LINES_PER_ORDER = 2.4  # 1 + Poisson(1.4), see _lines_per_order
