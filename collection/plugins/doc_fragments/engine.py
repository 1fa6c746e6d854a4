# -*- coding: utf-8 -*-
# Options of the modules that talk to the oVirt engine REST API.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  engine_url:
    description:
      - The engine, C(https://FQDN/ovirt-engine). Only the scheme, host and port are used; the
        API is C(/ovirt-engine/api) and SSO C(/ovirt-engine/sso) below them.
      - Required by every call that talks to the engine (all but C(he_backup_disk) with
        C(state=query)).
    type: str
  username:
    description:
      - Engine user, C(user@profile).
    type: str
    default: admin@internal
  password:
    description:
      - The user's password. Kept in memory only; never logged, printed or passed to a command.
      - Required by every call that talks to the engine (all but C(he_backup_disk) with
        C(state=query)).
    type: str
    no_log: true
  ca_file:
    description:
      - PEM file of the engine CA to trust. When not given, the CA is fetched from
        C(/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA) on first
        contact (pin it with O(ca_fingerprint), keep it with O(ca_pin_file)).
      - TLS is always verified against this CA and no other.
      - Mutually exclusive with O(ca_pin_file).
    type: path
  ca_pin_file:
    description:
      - Where the engine CA fetched on the first contact is pinned (a JSON file, mode 0600, with
        the PEM, its subject and fingerprints), so every later contact trusts that CA and no
        other without fetching it again.
      - When the file holds the pin of this O(ca_pin_attempt) (or of any attempt when
        O(ca_pin_attempt) is not given), its CA is trusted; an engine that presents another CA
        is refused, both CAs named with their SHA-1 and SHA-256 fingerprints, before anything
        but the CA request is sent to it. Remove the file to pin a CA replaced on purpose.
      - Otherwise the CA is fetched, checked against O(ca_fingerprint) when given, and pinned
        once the engine proved it holds it (login and API root over TLS verified by it).
      - Check mode fetches and shows the CA but does not write the pin (it writes nothing).
    type: path
  ca_pin_attempt:
    description:
      - The attempt the pin belongs to (the playbooks give the attempt id of their record). A
        pin file written for another attempt is not trusted; this attempt pins again on its
        first contact. Needs O(ca_pin_file).
    type: str
  ca_fingerprint:
    description:
      - Pinned SHA-1 or SHA-256 fingerprint of the engine CA (hex, colons and case ignored; the
        SHA-1 also as old hosted-engine-setup printed it, without leading zeroes). On a
        mismatch the module fails before sending anything else, showing both fingerprints.
    type: str
  timeout:
    description:
      - Timeout of one HTTP request, in seconds. Connection errors, resets, timeouts and 5xx
        answers are retried up to 4 times in all, with a backoff of 1, 2 and 4 seconds.
    type: float
    default: 60
  api_version:
    description:
      - REST API dialect. C(4) logs in with an SSO token (engines 4.x); C(3) uses HTTP Basic with
        a persistent session (header C(Prefer) set to C(persistent-auth)) (engine 3.6; 4.0 and 4.1 also serve it).
      - C(auto) uses v4 when the engine has the SSO service and v3 otherwise; the engine version
        comes from the API root's C(product_info).
    type: str
    choices: [auto, "3", "4"]
    default: auto
"""
