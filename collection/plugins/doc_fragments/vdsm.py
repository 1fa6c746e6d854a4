# -*- coding: utf-8 -*-
# Options of the modules that talk to the host's vdsm (JSON-RPC over STOMP on TLS).

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  vdsm_address:
    description:
      - C(host:port) of this host's vdsm JSON-RPC endpoint. The module talks to vdsm directly,
        JSON-RPC 2.0 over STOMP 1.2 on TLS, as every vdsm from 4.17 (oVirt 3.6) to 4.50 (oVirt
        4.5) serves it; C(vdsm-client) is not needed (a 4.0 host has none).
      - One connection serves the whole module run; it is opened at the first vdsm call.
    type: str
    default: localhost:54321
  vdsm_pki_dir:
    description:
      - Directory laid out like C(/etc/pki/vdsm) holding the host's vdsm key
        C(keys/vdsmkey.pem), certificate C(certs/vdsmcert.pem) and CA C(certs/cacert.pem).
        The module presents that certificate and trusts only that CA (the chain is verified;
        the host name is not compared, as vdsm's own clients do not compare it).
      - Reading the key needs root (Ansible C(become)), as for C(vdsm-client).
    type: path
    default: /etc/pki/vdsm
  vdsm_timeout:
    description:
      - Seconds to wait for connecting to vdsm and for each answer; a call that gets no
        answer in time fails naming the call.
    type: float
    default: 60
"""
