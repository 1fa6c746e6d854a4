//! The root password as a SHA-512 crypt hash (`$6$salt$hash`), never the password itself.

use sha2::{Digest, Sha256};

/// The crypt(3) salt alphabet.
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Salt length: the maximum SHA-crypt uses.
const SALT_CHARS: usize = 16;

/// Hashes `password` with SHA-512 crypt (5000 rounds, glibc's default).
///
/// The salt is derived from the VM id and FQDN so identical inputs give a byte-identical
/// ISO. It deliberately does not depend on the password: a salt derived from the password
/// would publish a fast, unsalted digest of it next to the slow hash.
pub fn sha512_crypt(password: &str, vm_id: &str, fqdn: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"he_cloudinit root password salt\0")
        .chain_update(vm_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(fqdn.as_bytes())
        .finalize();
    let salt: String = digest[..SALT_CHARS]
        .iter()
        .map(|byte| CRYPT_ALPHABET[usize::from(byte & 63)] as char)
        .collect();
    hash_with_salt(password, &salt)
}

fn hash_with_salt(password: &str, salt: &str) -> String {
    let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
        .expect("the default rounds are valid");
    let hash = sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &params)
        .expect("SHA-512 crypt of a valid salt cannot fail");
    format!("$6${salt}${hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_openssl_passwd_6() {
        // `openssl passwd -6 -salt abcdefghijklmnop 'S3cret!pw'`
        assert_eq!(
            hash_with_salt("S3cret!pw", "abcdefghijklmnop"),
            "$6$abcdefghijklmnop$MrEfz5GIipdkiEbwTgTSCI8uruaRdBLaG8iXaZSC3xVTZwTHB.dWUK733b9ioANmsOE9JGEOD4JpA0w1QRC3s/"
        );
    }

    #[test]
    fn is_deterministic_per_vm_and_verifiable() {
        let hash = sha512_crypt("S3cret!pw", "a-vm", "engine.example.com");
        assert_eq!(
            hash,
            sha512_crypt("S3cret!pw", "a-vm", "engine.example.com")
        );
        assert_ne!(
            hash,
            sha512_crypt("S3cret!pw", "b-vm", "engine.example.com")
        );
        assert!(sha_crypt::sha512_check("S3cret!pw", &hash).is_ok());
        assert!(!hash.contains("S3cret"));
    }
}
