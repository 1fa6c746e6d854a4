# -*- coding: utf-8 -*-
# The host's user and group ids, shared by the modules that touch the storage domain or write
# what the engine VM opens (SPEC 6.6: least privilege, as on a real host).

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  vdsm_uid:
    description:
      - uid of C(vdsm), the owner of every file on the storage domain.
      - Run as root, the module reads and writes storage-domain volumes, and runs C(qemu-img) and
        C(guestfish), as I(vdsm_uid):I(kvm_gid) with I(kvm_gid) as its only group, because
        storage domains on NFS are usually exported with C(root_squash), where root may not open
        the volumes (the original tool did the same, with C(sudo -u vdsm -g kvm qemu-img ...)). Files
        it creates that way get mode 0660. Run as another user, it acts as itself.
      - The shipped playbooks pass C(he_vdsm_uid).
    type: int
    default: 36
  kvm_gid:
    description:
      - gid of the C(kvm) group, C(vdsm)'s primary group and one of C(qemu)'s groups.
      - The shipped playbooks pass C(he_kvm_gid).
    type: int
    default: 36
  qemu_uid:
    description:
      - uid of C(qemu), the user the engine VM runs as. Run as root, the module gives the
        cloud-init ISO to it (see M(ovirt_he.upgrade.he_cloudinit)) and checks that it can reach
        what the VM opens.
      - The shipped playbooks pass C(he_qemu_uid).
    type: int
    default: 107
  qemu_gid:
    description:
      - gid of C(qemu)'s primary group (C(qemu) is also in I(kvm_gid)).
      - The shipped playbooks pass C(he_qemu_gid).
    type: int
    default: 107
"""
