//! Apple Wallet passes: a store card per member, zipped as a `.pkpass` with its manifest of SHA-1 hashes and a
//! detached PKCS#7 signature of that manifest, made with the program's pass-type certificate and key and
//! Apple's intermediate (WWDR) certificate, all read from files the configuration names.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::X509;
use serde_json::json;

use super::devices::WalletPass;

/// The media type Safari and Wallet open a pass by.
pub const CONTENT_TYPE: &str = "application/vnd.apple.pkpass";

/// The images every pass carries unless the configuration's folder gives its own.
const DEFAULT_IMAGES: [(&str, &[u8]); 4] = [
    ("icon.png", include_bytes!("../../assets/wallet/icon.png")),
    (
        "icon@2x.png",
        include_bytes!("../../assets/wallet/icon@2x.png"),
    ),
    ("logo.png", include_bytes!("../../assets/wallet/logo.png")),
    (
        "logo@2x.png",
        include_bytes!("../../assets/wallet/logo@2x.png"),
    ),
];

/// The images a pass may carry, by the names Wallet looks for.
const IMAGE_NAMES: [&str; 8] = [
    "icon.png",
    "icon@2x.png",
    "logo.png",
    "logo@2x.png",
    "strip.png",
    "strip@2x.png",
    "thumbnail.png",
    "thumbnail@2x.png",
];

/// Where the Apple Wallet settings are: identifiers, and files that hold the secrets.
#[derive(Debug, Clone)]
pub struct AppleWalletFiles {
    /// `pass.com.example.loyalty`, as registered with Apple.
    pub pass_type_id: String,
    /// The Apple developer team's identifier.
    pub team_id: String,
    /// The pass-type certificate (PEM) Apple issued for `pass_type_id`.
    pub certificate: PathBuf,
    /// Its private key (PEM, unencrypted; readable by the server's user only).
    pub key: PathBuf,
    /// Apple's WWDR intermediate certificate (PEM).
    pub wwdr: PathBuf,
    /// A folder of PNGs (icon.png, logo.png, strip.png...) that replace the built-in ones.
    pub images: Option<PathBuf>,
    /// The pass's colours, CSS `rgb(r, g, b)`.
    pub background: String,
    pub foreground: String,
}

/// The loaded identity that signs passes. Its Debug never shows the key.
pub struct PassSigner {
    pass_type_id: String,
    team_id: String,
    certificate: X509,
    key: PKey<Private>,
    chain: Stack<X509>,
    images: BTreeMap<String, Vec<u8>>,
    background: String,
    foreground: String,
}

impl std::fmt::Debug for PassSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassSigner")
            .field("pass_type_id", &self.pass_type_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

impl PassSigner {
    /// Reads and checks the files: a certificate that does not match its key is refused here, at start-up,
    /// rather than in every pass.
    pub fn load(files: &AppleWalletFiles) -> anyhow::Result<Self> {
        anyhow::ensure!(
            files.pass_type_id.starts_with("pass.") && files.pass_type_id.len() <= 200,
            "the pass type identifier must be Apple's, like pass.com.example.loyalty"
        );
        anyhow::ensure!(
            !files.team_id.is_empty() && files.team_id.chars().all(|c| c.is_ascii_alphanumeric()),
            "the Apple team identifier is letters and digits, like A1B2C3D4E5"
        );
        let certificate = X509::from_pem(&read(&files.certificate, "the pass-type certificate")?)
            .with_context(|| {
            format!("{} is not a PEM certificate", files.certificate.display())
        })?;
        // The key's own parser error could quote it; the message names only the file.
        let key =
            PKey::private_key_from_pem(&read(&files.key, "the pass-type key")?).map_err(|_| {
                anyhow::anyhow!(
                    "{} is not an unencrypted PEM private key",
                    files.key.display()
                )
            })?;
        anyhow::ensure!(
            certificate.public_key()?.public_eq(&key),
            "the pass-type certificate {} does not match the key {}",
            files.certificate.display(),
            files.key.display()
        );
        let mut chain = Stack::new()?;
        for cert in X509::stack_from_pem(&read(&files.wwdr, "Apple's WWDR certificate")?)? {
            chain.push(cert)?;
        }
        anyhow::ensure!(
            chain.len() > 0,
            "{} holds no certificate",
            files.wwdr.display()
        );
        let mut images: BTreeMap<String, Vec<u8>> = DEFAULT_IMAGES
            .iter()
            .map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec()))
            .collect();
        if let Some(folder) = &files.images {
            for name in IMAGE_NAMES {
                let path = folder.join(name);
                if path.exists() {
                    images.insert(name.to_owned(), read(&path, "a pass image")?);
                }
            }
        }
        Ok(Self {
            pass_type_id: files.pass_type_id.clone(),
            team_id: files.team_id.clone(),
            certificate,
            key,
            chain,
            images,
            background: files.background.clone(),
            foreground: files.foreground.clone(),
        })
    }

    pub fn pass_type_id(&self) -> &str {
        &self.pass_type_id
    }

    /// The pass's `pass.json`; `web_service_url` is where Wallet asks for its updates.
    pub fn pass_json(&self, pass: &WalletPass, web_service_url: &str) -> serde_json::Value {
        let barcode = json!({
            "format": "PKBarcodeFormatQR",
            "message": pass.external_id,
            "messageEncoding": "iso-8859-1",
            "altText": pass.external_id,
        });
        json!({
            "formatVersion": 1,
            "passTypeIdentifier": self.pass_type_id,
            "serialNumber": pass.pass_id.to_string(),
            "teamIdentifier": self.team_id,
            "organizationName": pass.program_name,
            "description": format!("{} loyalty card", pass.program_name),
            "logoText": pass.program_name,
            "webServiceURL": web_service_url,
            "authenticationToken": pass.wallet_token,
            "backgroundColor": self.background,
            "foregroundColor": self.foreground,
            "labelColor": self.foreground,
            "barcodes": [barcode.clone()],
            "barcode": barcode,
            "storeCard": {
                "headerFields": [{
                    "key": "balance",
                    "label": "POINTS",
                    "value": pass.points,
                    "changeMessage": "Your balance is now %@ points.",
                }],
                "primaryFields": [{ "key": "program", "label": "PROGRAM", "value": pass.program_name }],
                "secondaryFields": [{ "key": "member", "label": "MEMBER", "value": pass.external_id }],
            },
        })
    }

    /// The signed `.pkpass` of `pass`.
    pub fn pkpass(&self, pass: &WalletPass, web_service_url: &str) -> anyhow::Result<Vec<u8>> {
        let mut files: BTreeMap<String, Vec<u8>> = self.images.clone();
        files.insert(
            "pass.json".to_owned(),
            serde_json::to_vec_pretty(&self.pass_json(pass, web_service_url))?,
        );
        let manifest: BTreeMap<&str, String> = files
            .iter()
            .map(|(name, bytes)| (name.as_str(), hex(&openssl::sha::sha1(bytes))))
            .collect();
        let manifest = serde_json::to_vec_pretty(&manifest)?;
        let signature = Pkcs7::sign(
            &self.certificate,
            &self.key,
            &self.chain,
            &manifest,
            Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY,
        )?
        .to_der()?;
        files.insert("manifest.json".to_owned(), manifest);
        files.insert("signature".to_owned(), signature);

        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in &files {
            zip.start_file(name.as_str(), options)?;
            zip.write_all(bytes)?;
        }
        Ok(zip.finish()?.into_inner())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
