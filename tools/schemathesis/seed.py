"""Prepares a fresh rnd-local for scripts/contract-test.sh (standard library only).

    seed.py BASE_URL DOCUMENT_PATH ORDERS_DICTIONARY_PATH

Saves the OpenAPI document the stack serves (GET /openapi.json) to DOCUMENT_PATH, the document
schemathesis then tests; saves a profile for each role's user, the chef's with a pickup point, so
that schemathesis' orders to chef-1 are placed; and places one order of customer-1 with chef-1 in
each status of the lifecycle (driver-1 assigned from `assigned_to_driver` on), whose ids it
writes to ORDERS_DICTIONARY_PATH (a libFuzzer dictionary, one quoted id a line), so that the
order endpoints are tried on real orders too, not only on ids that name none. The tokens come
from RND_TOKEN_CUSTOMER, RND_TOKEN_CHEF, RND_TOKEN_DRIVER and RND_TOKEN_ADMIN; none is printed.
"""

import json
import os
import sys
import urllib.request

PROFILES = {
    "customer": {"name": "Ada Customer", "phone": "+1 512 555 0199"},
    "chef": {
        "name": "Carla Chef",
        "phone": "+1 512 555 0101",
        "businessName": "Carla's Kitchen",
        "address": "500 E 7th St, Austin, TX",
        "latitude": 30.2676,
        "longitude": -97.736,
    },
    "driver": {"name": "Dan Driver", "phone": "+1 512 555 0100"},
    "admin": {"name": "Ana Admin"},
}


def call(method, url, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


# The lifecycle, step by step: (who, action, body).
LIFECYCLE = [
    ("admin", "confirm-payment", None),
    ("chef", "accept", None),
    ("chef", "ready", None),
    ("admin", "assign", {"driverId": "driver-1"}),
    ("driver", "pickup", None),
    ("driver", "in-transit", None),
    ("driver", "deliver", None),
]

ORDER = {
    "chefId": "chef-1",
    "deliveryAddress": "1 Congress Ave, Austin, TX",
    "deliveryLatitude": 30.2747,
    "deliveryLongitude": -97.7404,
    "items": [{"name": "Tamales", "quantity": 6}],
}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    base, document, dictionary = sys.argv[1:]
    tokens = {role: os.environ[f"RND_TOKEN_{role.upper()}"] for role in PROFILES}
    with open(document, "wb") as out:
        out.write(call("GET", f"{base}/openapi.json", tokens["admin"]))
    for role, profile in PROFILES.items():
        call("PUT", f"{base}/profiles/me", tokens[role], profile)
    ids = []
    for steps in range(len(LIFECYCLE) + 1):
        order = json.loads(call("POST", f"{base}/orders", tokens["customer"], ORDER))
        for who, action, body in LIFECYCLE[:steps]:
            call("POST", f"{base}/orders/{order['orderId']}/{action}", tokens[who], body)
        ids.append(order["orderId"])
    with open(dictionary, "w", encoding="utf-8") as out:
        out.write("# Orders of customer-1 with chef-1, one in each status (tools/schemathesis/seed.py)\n")
        out.writelines(f'"{order_id}"\n' for order_id in ids)


if __name__ == "__main__":
    main()
