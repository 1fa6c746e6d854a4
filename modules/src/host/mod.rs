//! Host-side interfaces: hosted-engine, vdsm-client, hosted-engine.conf and vm.conf.
