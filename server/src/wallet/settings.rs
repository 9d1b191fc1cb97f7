//! The wallet settings, from flags or the environment: files that hold the certificates and keys, and the
//! identifiers that go with them. Nothing set, nothing is set up: no wallet button, nothing sent. The secrets
//! stay in their files; only their paths are ever printed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::apns::{APNS_URL, Apns, ApnsFiles};
use super::devices::Channel;
use super::google::{GoogleWallet, GoogleWalletFiles, TOKEN_URL, WALLET_API_URL};
use super::pkpass::{AppleWalletFiles, PassSigner};
use super::{WalletConfig, Webhook};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct WalletArgs {
    /// The server's address as phones reach it (https://loyalty.example): wallet passes link back to it.
    #[arg(long, env = "LOYALTY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The Apple pass type identifier (pass.com.example.loyalty).
    #[arg(long, env = "LOYALTY_APPLE_PASS_TYPE_ID")]
    pub apple_pass_type_id: Option<String>,
    /// The Apple developer team identifier.
    #[arg(long, env = "LOYALTY_APPLE_TEAM_ID")]
    pub apple_team_id: Option<String>,
    /// The pass type certificate (PEM).
    #[arg(long, env = "LOYALTY_APPLE_PASS_CERT")]
    pub apple_pass_cert: Option<PathBuf>,
    /// Its private key (PEM, unencrypted).
    #[arg(long, env = "LOYALTY_APPLE_PASS_KEY")]
    pub apple_pass_key: Option<PathBuf>,
    /// Apple's WWDR intermediate certificate (PEM).
    #[arg(long, env = "LOYALTY_APPLE_WWDR_CERT")]
    pub apple_wwdr_cert: Option<PathBuf>,
    /// The APNs authentication key (.p8).
    #[arg(long, env = "LOYALTY_APNS_KEY")]
    pub apns_key: Option<PathBuf>,
    /// That key's identifier.
    #[arg(long, env = "LOYALTY_APNS_KEY_ID")]
    pub apns_key_id: Option<String>,
    /// A folder of PNGs (icon.png, logo.png, strip.png...) for the passes, in place of the built-in ones.
    #[arg(long, env = "LOYALTY_APPLE_PASS_IMAGES")]
    pub apple_pass_images: Option<PathBuf>,
    #[arg(
        long,
        env = "LOYALTY_APPLE_PASS_BACKGROUND",
        default_value = "rgb(31, 95, 74)"
    )]
    pub apple_pass_background: String,
    #[arg(
        long,
        env = "LOYALTY_APPLE_PASS_FOREGROUND",
        default_value = "rgb(255, 255, 255)"
    )]
    pub apple_pass_foreground: String,
    /// Apple's push service; another address only for a stand-in.
    #[arg(long, env = "LOYALTY_APNS_URL", default_value = APNS_URL)]
    pub apns_url: String,
    /// PEM certificates the push service's certificate may also chain to (a stand-in's CA).
    #[arg(long, env = "LOYALTY_APNS_CA")]
    pub apns_ca: Option<PathBuf>,
    /// The Google Wallet issuer id.
    #[arg(long, env = "LOYALTY_GOOGLE_ISSUER_ID")]
    pub google_issuer_id: Option<String>,
    /// The Google Wallet loyalty class, without the issuer id.
    #[arg(long, env = "LOYALTY_GOOGLE_CLASS_ID")]
    pub google_class_id: Option<String>,
    /// The Google service account's JSON key file.
    #[arg(long, env = "LOYALTY_GOOGLE_SERVICE_ACCOUNT")]
    pub google_service_account: Option<PathBuf>,
    /// Google's Wallet API; another address only for a stand-in.
    #[arg(long, env = "LOYALTY_GOOGLE_WALLET_API", default_value = WALLET_API_URL)]
    pub google_wallet_api: String,
    /// Google's token service; another address only for a stand-in.
    #[arg(long, env = "LOYALTY_GOOGLE_TOKEN_URL", default_value = TOKEN_URL)]
    pub google_token_url: String,
}

/// What the settings set up: the configuration the pages read, and the push sender.
pub struct Wallets {
    pub config: WalletConfig,
    pub apns: Option<Apns>,
}

/// Which of `settings` (name, given) are missing: `None` when none is given, and an error when only some are.
fn all_or_none(wallet: &str, settings: &[(&str, bool)]) -> anyhow::Result<bool> {
    let missing: Vec<&str> = settings
        .iter()
        .filter(|(_, given)| !given)
        .map(|(name, _)| *name)
        .collect();
    if missing.len() == settings.len() {
        return Ok(false);
    }
    anyhow::ensure!(
        missing.is_empty(),
        "{wallet} needs all of its settings; missing: {}",
        missing.join(", ")
    );
    Ok(true)
}

impl Wallets {
    /// The channels pass changes are queued for, with the webhook when one is set.
    pub fn channels(&self, webhook: Option<&Webhook>) -> Vec<Channel> {
        let mut channels = Vec::new();
        if webhook.is_some() {
            channels.push(Channel::Webhook);
        }
        if self.apns.is_some() {
            channels.push(Channel::Apple);
        }
        if self.config.google.is_some() {
            channels.push(Channel::Google);
        }
        channels
    }
}

impl WalletArgs {
    /// A wallet is set up when all of its settings are given, and not at all when none are; some without the
    /// others is a mistake, refused with the names of those missing.
    pub fn wallets(&self) -> anyhow::Result<Wallets> {
        let apple = all_or_none(
            "Apple Wallet",
            &[
                ("--apple-pass-type-id", self.apple_pass_type_id.is_some()),
                ("--apple-team-id", self.apple_team_id.is_some()),
                ("--apple-pass-cert", self.apple_pass_cert.is_some()),
                ("--apple-pass-key", self.apple_pass_key.is_some()),
                ("--apple-wwdr-cert", self.apple_wwdr_cert.is_some()),
                ("--apns-key", self.apns_key.is_some()),
                ("--apns-key-id", self.apns_key_id.is_some()),
            ],
        )?;
        let google = all_or_none(
            "Google Wallet",
            &[
                ("--google-issuer-id", self.google_issuer_id.is_some()),
                ("--google-class-id", self.google_class_id.is_some()),
                (
                    "--google-service-account",
                    self.google_service_account.is_some(),
                ),
            ],
        )?;
        let mut wallets = Wallets {
            config: WalletConfig::default(),
            apns: None,
        };
        if !(apple || google) {
            return Ok(wallets);
        }
        let Some(public_url) = self.public_url.clone() else {
            anyhow::bail!("the wallets need --public-url, the address phones reach the server at");
        };
        anyhow::ensure!(
            public_url.starts_with("https://"),
            "--public-url must be https://: wallets call the server back only over HTTPS"
        );
        wallets.config.public_url = public_url.clone();
        if apple {
            let (signer, apns) = self.apple()?;
            wallets.config.apple = Some(Arc::new(signer));
            wallets.apns = Some(apns);
        }
        if let (true, Some(issuer_id), Some(class_suffix), Some(service_account)) = (
            google,
            &self.google_issuer_id,
            &self.google_class_id,
            &self.google_service_account,
        ) {
            let files = GoogleWalletFiles {
                issuer_id: issuer_id.clone(),
                class_suffix: class_suffix.clone(),
                service_account: service_account.clone(),
                api_url: self.google_wallet_api.clone(),
                token_url: self.google_token_url.clone(),
                public_url,
            };
            wallets.config.google = Some(Arc::new(GoogleWallet::load(
                &files,
                Duration::from_secs(10),
            )?));
        }
        Ok(wallets)
    }

    fn apple(&self) -> anyhow::Result<(PassSigner, Apns)> {
        let (
            Some(pass_type_id),
            Some(team_id),
            Some(cert),
            Some(key),
            Some(wwdr),
            Some(apns_key),
            Some(key_id),
        ) = (
            &self.apple_pass_type_id,
            &self.apple_team_id,
            &self.apple_pass_cert,
            &self.apple_pass_key,
            &self.apple_wwdr_cert,
            &self.apns_key,
            &self.apns_key_id,
        )
        else {
            anyhow::bail!("Apple Wallet needs all of its settings")
        };
        let signer = PassSigner::load(&AppleWalletFiles {
            pass_type_id: pass_type_id.clone(),
            team_id: team_id.clone(),
            certificate: cert.clone(),
            key: key.clone(),
            wwdr: wwdr.clone(),
            images: self.apple_pass_images.clone(),
            background: self.apple_pass_background.clone(),
            foreground: self.apple_pass_foreground.clone(),
        })?;
        let apns = Apns::new(
            &ApnsFiles {
                key: apns_key.clone(),
                key_id: key_id.clone(),
                team_id: team_id.clone(),
                topic: pass_type_id.clone(),
                url: self.apns_url.clone(),
                extra_roots: self.apns_ca.clone(),
            },
            Duration::from_secs(10),
        )?;
        Ok((signer, apns))
    }
}
