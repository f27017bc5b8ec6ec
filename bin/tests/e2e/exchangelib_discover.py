"""Runs exchangelib's autodiscovery, unmodified, and prints what it found as one JSON line.

Usage: exchangelib_discover.py EMAIL [USERNAME PASSWORD]

Called by bin/tests/e2e/exchangelib.rs with the system resolver pointed at the test's DNS server
(a private /etc/resolv.conf) and REQUESTS_CA_BUNDLE set to the test CA, so exchangelib resolves
and trusts exactly as it would in production. Its debug log goes to stderr.
"""

import json
import logging
import sys

import exchangelib
from exchangelib import Credentials
from exchangelib.autodiscover import Autodiscovery


def main() -> int:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    email = sys.argv[1]
    credentials = Credentials(sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else None
    ad_response, protocol = Autodiscovery(email=email, credentials=credentials).discover()
    print(
        json.dumps(
            {
                "exchangelib_version": exchangelib.__version__,
                "ews_url": ad_response.ews_url,
                "autodiscover_smtp_address": ad_response.autodiscover_smtp_address,
                "version": ad_response.version.api_version if ad_response.version else None,
                "user_settings": ad_response.user_settings,
                "service_endpoint": protocol.service_endpoint,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
