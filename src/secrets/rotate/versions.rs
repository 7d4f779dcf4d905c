//! The runner's access to the vault: a secret's decrypted version in a given state, and a
//! new version sealed and stored. Plaintext exists only in the `Version`s handed out here.

use super::*;

impl Rotations {
    /// The decrypted version of a secret in `state`, if any.
    pub async fn one(
        &self,
        secret: &ManagedSecret,
        state: VersionState,
    ) -> Result<Option<Version>, RotateError> {
        let rows = store::versions(&self.pool, secret.name.as_str(), &[state.as_str()]).await?;
        rows.first()
            .map(|row| self.open(&secret.name, row))
            .transpose()
            .map_err(Into::into)
    }

    pub(super) fn open(&self, name: &SecretName, row: &VersionRow) -> Result<Version, VaultError> {
        Ok(Version {
            secret: name.clone(),
            number: row.version,
            material: Material {
                value: self.key.open(name, row.version, &row.nonce, &row.sealed)?,
                public: row.public.clone(),
            },
            promoted_at: row.promoted_at,
        })
    }

    pub(super) async fn insert(
        &self,
        name: &SecretName,
        version: i32,
        state: VersionState,
        material: &Material,
    ) -> Result<(), sqlx::Error> {
        let sealed = self.key.seal(name, version, &material.value);
        let print = fingerprint(material.value.expose().as_bytes());
        store::insert_version(
            &self.pool,
            NewVersion {
                secret: name.as_str(),
                version,
                state,
                nonce: &sealed.nonce,
                sealed: &sealed.sealed,
                public: &material.public,
                fingerprint: &print,
            },
        )
        .await
    }
}
