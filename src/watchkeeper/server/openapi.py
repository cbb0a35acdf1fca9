"""Print the HTTP API's OpenAPI spec (kept in the repo as docs/openapi.json):

python -m watchkeeper.server.openapi > docs/openapi.json
"""

from __future__ import annotations

import json
import sys

from watchkeeper.config import Config
from watchkeeper.server.app import create_app


def spec() -> dict[str, object]:
    app = create_app(Config(), schedule=False)
    return app.openapi()


def main() -> None:
    json.dump(spec(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
