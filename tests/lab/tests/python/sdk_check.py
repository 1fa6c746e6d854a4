"""Drives the fake engine with the official oVirt Python SDK (ovirtsdk4).

Usage: sdk_check.py URL CA_FILE PASSWORD HOST_UUID SD_ID UNREGISTERED_ID_1 UNREGISTERED_ID_2
Exits non-zero (AssertionError / SDK error) when the engine does not behave as the SDK needs.
"""

import sys
import time

import ovirtsdk4 as sdk
import ovirtsdk4.types as types


def main():
    url, ca_file, password, host_uuid, sd_id, unregistered_a, unregistered_b = sys.argv[1:8]

    # Wrong password: the SSO error surfaces as AuthError.
    bad = sdk.Connection(url=url, username="admin@internal", password="wrong", ca_file=ca_file)
    try:
        bad.test(raise_exception=True)
        raise AssertionError("wrong password accepted")
    except sdk.AuthError as error:
        assert "access_denied" in str(error), str(error)
    finally:
        bad.close(logout=False)

    connection = sdk.Connection(url=url, username="admin@internal", password=password, ca_file=ca_file)
    with connection:
        assert connection.test(raise_exception=True)
        system = connection.system_service()
        api = system.get()
        version = api.product_info.version
        print("engine", version.full_version, version.major, version.minor)
        assert version.major == 4

        hosts = system.hosts_service().list(all_content=True)
        assert len(hosts) == 3, hosts
        this = [h for h in hosts if h.hardware_information.uuid == host_uuid]
        assert len(this) == 1
        this = this[0]
        assert this.status == types.HostStatus.UP, this.status
        assert this.spm.status == types.SpmStatus.SPM, this.spm.status
        assert this.hosted_engine is not None and this.hosted_engine.configured
        searched = system.hosts_service().list(search="name=%s" % this.name)
        assert [h.id for h in searched] == [this.id]

        dcs = system.data_centers_service().list()
        assert dcs[0].status == types.DataCenterStatus.UP
        assert dcs[0].version.major is not None
        clusters = system.clusters_service().list()
        assert clusters[0].data_center.id == dcs[0].id
        assert clusters[0].version.minor == dcs[0].version.minor

        sd_service = system.storage_domains_service().storage_domain_service(sd_id)
        sd = sd_service.get()
        assert sd.name == "hosted_storage"
        available_before = sd.available
        assert available_before > 0

        disks_service = system.disks_service()
        disks = disks_service.list()
        assert [d.alias for d in disks] == ["he_virtio_disk"], [d.alias for d in disks]
        assert disks_service.disk_service("00000000-0000-4000-8000-000000000000").get  # service object
        try:
            disks_service.disk_service("00000000-0000-4000-8000-000000000000").get()
            raise AssertionError("unknown disk found")
        except sdk.NotFoundError:
            pass

        disk = disks_service.add(
            types.Disk(
                name="sdk-backup",
                alias="sdk-backup",
                description="hosted-engine-backup-20260101000000",
                format=types.DiskFormat.RAW,
                sparse=False,
                provisioned_size=1 << 30,
                storage_domains=[types.StorageDomain(id=sd_id)],
            )
        )
        assert disk.status == types.DiskStatus.LOCKED, disk.status
        assert disk.image_id
        disk_service = disks_service.disk_service(disk.id)
        deadline = time.time() + 30
        while disk_service.get().status != types.DiskStatus.OK:
            assert time.time() < deadline, "disk never became ok"
            time.sleep(0.2)
        assert sd_service.get().available == available_before - (1 << 30)

        try:
            disks_service.add(types.Disk(name="incomplete"))
            raise AssertionError("incomplete disk accepted")
        except sdk.Error as error:
            assert "Incomplete parameters" in str(error), str(error)

        sd_disks = sd_service.disks_service()
        unregistered = sd_disks.list(unregistered=True)
        ids = sorted(d.id for d in unregistered)
        assert ids == sorted([unregistered_a, unregistered_b]), ids
        registered = sd_disks.add(types.Disk(id=unregistered_a), unregistered=True)
        assert registered.id == unregistered_a
        attached = (
            system.data_centers_service()
            .data_center_service(dcs[0].id)
            .storage_domains_service()
            .storage_domain_service(sd_id)
            .disks_service()
            .disk_service(unregistered_b)
        )
        attached.register()
        assert sd_disks.list(unregistered=True) == []
        aliases = sorted(d.alias for d in disks_service.list())
        assert aliases == sorted(["he_virtio_disk", "sdk-backup", "unreg-a", "unreg-b"]), aliases

        # The two registered 1 GiB disks now count against the domain; the removed one not.
        disk_service.remove()
        assert sd_service.get().available == available_before - (2 << 30)

        domains = system.domains_service().list()
        assert [d.name for d in domains] == ["internal-authz"]
    print("SDK check passed")


if __name__ == "__main__":
    main()
