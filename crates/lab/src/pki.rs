//! The lab's certificates, generated at start: one CA, the API server's serving certificate,
//! and a client certificate per identity (admin, controller-manager, scheduler, each kubelet).
//! Identities follow Kubernetes' conventions: the CN is the user, O the groups.

use crate::error::{LabError, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Pki {
    dir: PathBuf,
    issuer: std::sync::Arc<Issuer<'static, KeyPair>>,
}

/// Paths of a written certificate and its key.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn pki_error(what: &str) -> impl FnOnce(rcgen::Error) -> LabError + '_ {
    move |e| LabError::Other(format!("generate {what}: {e}"))
}

impl Pki {
    /// Creates the CA in `dir` (ca.crt, ca.key) and the service-account signing key (sa.key).
    pub fn create(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).map_err(LabError::io(format!("create {}", dir.display())))?;
        let key = KeyPair::generate().map_err(pki_error("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error("CA"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "cniswap-lab-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(pki_error("CA"))?;
        write(&dir.join("ca.crt"), &cert.pem(), false)?;
        write(&dir.join("ca.key"), &key.serialize_pem(), true)?;
        let sa = KeyPair::generate().map_err(pki_error("service-account key"))?;
        write(&dir.join("sa.key"), &sa.serialize_pem(), true)?;
        write(&dir.join("sa.pub"), &sa.public_key_pem(), false)?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            issuer: std::sync::Arc::new(Issuer::new(params, key)),
        })
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn sa_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }

    pub fn sa_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }

    /// A serving certificate for `names` (DNS names and IP addresses).
    pub fn server(&self, file: &str, common_name: &str, names: &[String]) -> Result<CertFiles> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error(file))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => name
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(pki_error(file)),
            })
            .collect::<Result<_>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.sign(file, params)
    }

    /// A client certificate for user `user` in `groups`.
    pub fn client(&self, file: &str, user: &str, groups: &[&str]) -> Result<CertFiles> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error(file))?;
        params.distinguished_name.push(DnType::CommonName, user);
        for group in groups {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.sign(file, params)
    }

    fn sign(&self, file: &str, params: CertificateParams) -> Result<CertFiles> {
        let key = KeyPair::generate().map_err(pki_error(file))?;
        let cert = params
            .signed_by(&key, self.issuer.as_ref())
            .map_err(pki_error(file))?;
        let files = CertFiles {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
        };
        write(&files.cert, &cert.pem(), false)?;
        write(&files.key, &key.serialize_pem(), true)?;
        Ok(files)
    }
}

fn write(path: &Path, text: &str, secret: bool) -> Result<()> {
    std::fs::write(path, text).map_err(LabError::io(format!("write {}", path.display())))?;
    if secret {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(LabError::io(format!("chmod {}", path.display())))?;
    }
    Ok(())
}

/// A kubeconfig for `server` authenticating with a client certificate.
pub fn kubeconfig(server: &str, ca: &Path, client: &CertFiles, context: &str) -> String {
    let value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {
            "server": server, "certificate-authority": ca}}],
        "users": [{"name": context, "user": {
            "client-certificate": client.cert, "client-key": client.key}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    });
    // JSON is YAML; every Kubernetes component and kubectl read it.
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
