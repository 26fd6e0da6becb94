//! Building the *Create Widget URL* request: pure functions, no I/O.

use domain::{Counterparty, Network};
use ports::WidgetRequest;
use serde_json::{Map, Value};

use crate::config::TransakConfig;

/// The network name sent for a Lightning counterparty.
///
/// Transak's public documentation (query parameters, Create Widget URL) lists no network
/// name for Bitcoin over Lightning that we could find, so this is our assumption: check it
/// against Transak's *Get Crypto Currencies* API for the partner account before going live.
pub const LIGHTNING_NETWORK: &str = "lightning";

/// Transak's name of our network, as sent in the `network` widget parameter.
///
/// `lightning` only matters on [`Network::Btc`] (the domain allows Lightning counterparties
/// on BTC only); there it gives [`LIGHTNING_NETWORK`], on any other network it is ignored.
///
/// ```
/// use domain::Network;
/// use transak::transak_network;
/// assert_eq!(transak_network(Network::Btc, false), "bitcoin");
/// assert_eq!(transak_network(Network::Btc, true), "lightning");
/// assert_eq!(transak_network(Network::Polygon, false), "polygon");
/// assert_eq!(transak_network(Network::Bsc, false), "bsc");
/// ```
pub fn transak_network(network: Network, lightning: bool) -> &'static str {
    match network {
        Network::Btc if lightning => LIGHTNING_NETWORK,
        Network::Btc => "bitcoin",
        Network::Eth => "ethereum",
        Network::Polygon => "polygon",
        Network::Sol => "solana",
        Network::Bsc => "bsc",
        Network::Tron => "tron",
    }
}

/// The `widgetParams` object of a *Create Widget URL* request.
///
/// The configured extras come first; the parameters the gateway owns (`apiKey`,
/// `referrerDomain`, `cryptoCurrencyCode`, `network`, `walletAddress` for on-chain
/// counterparties, `partnerOrderId` = our session id, `partnerCustomerId` = the subject's
/// id) are then set on top. [`TransakConfig`] already refuses extras that name them, so
/// nothing is silently overridden.
///
/// ```
/// use domain::{Asset, BitcoinNetwork, Counterparty, CounterpartyAddress, LedgerTable,
///     Network, SessionId, Subject};
/// use ports::WidgetRequest;
/// use secrecy::SecretString;
/// use transak::{widget_params, Environment, TransakConfig};
/// use uuid::Uuid;
///
/// let config = TransakConfig::builder(Environment::Staging, "key",
///     SecretString::from("secret"), "partner.example.com")
///     .extra_widget_param("productsAvailed", "SELL")
///     .build().unwrap();
/// let request = WidgetRequest {
///     session_id: SessionId::from_uuid(Uuid::from_u128(1)),
///     subject: Subject::User(Uuid::from_u128(2)),
///     asset: Asset::new("USDC", "ETH", &LedgerTable::default()).unwrap(),
///     counterparty: Counterparty::Address(CounterpartyAddress::parse(
///         Network::Eth, "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", BitcoinNetwork::Mainnet,
///     ).unwrap()),
/// };
/// let params = widget_params(&config, &request);
/// assert_eq!(params["apiKey"], "key");
/// assert_eq!(params["cryptoCurrencyCode"], "USDC");
/// assert_eq!(params["network"], "ethereum");
/// assert_eq!(params["walletAddress"], "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359");
/// assert_eq!(params["productsAvailed"], "SELL");
/// ```
pub fn widget_params(config: &TransakConfig, request: &WidgetRequest) -> Value {
    let mut params: Map<String, Value> = config.extra_widget_params().clone();
    let mut set = |key: &str, value: String| {
        params.insert(key.to_string(), Value::String(value));
    };
    set("apiKey", config.api_key().to_string());
    set("referrerDomain", config.referrer_domain().to_string());
    set(
        "cryptoCurrencyCode",
        request.asset.currency().as_str().to_string(),
    );
    let lightning = matches!(request.counterparty, Counterparty::Lightning(_));
    set(
        "network",
        transak_network(request.asset.network(), lightning).to_string(),
    );
    if let Counterparty::Address(address) = &request.counterparty {
        set("walletAddress", address.as_str().to_string());
    }
    set("partnerOrderId", request.session_id.to_string());
    set("partnerCustomerId", request.subject.id().to_string());
    Value::Object(params)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use domain::{
        Asset, BitcoinNetwork, CounterpartyAddress, LedgerTable, LightningPayment, PaymentHash,
        SessionId, Subject,
    };
    use secrecy::SecretString;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::config::Environment;

    fn config() -> TransakConfig {
        TransakConfig::builder(
            Environment::Staging,
            "api-key-1",
            SecretString::from("secret"),
            "partner.example.com",
        )
        .extra_widget_param("productsAvailed", "SELL")
        .extra_widget_param("themeColor", "1a2b3c")
        .extra_widget_param("hideMenu", true)
        .build()
        .unwrap()
    }

    fn request(currency: &str, network: &str, counterparty: Counterparty) -> WidgetRequest {
        WidgetRequest {
            session_id: SessionId::from_uuid(Uuid::from_u128(
                0x0193_0000_0000_7000_8000_0000_0000_0001,
            )),
            subject: Subject::Business(Uuid::from_u128(0x7f0c_2a52_8f7e_4c3e_9a61_2f1d_7e1b_9c44)),
            asset: Asset::new(currency, network, &LedgerTable::default()).unwrap(),
            counterparty,
        }
    }

    fn address(network: Network, s: &str) -> Counterparty {
        Counterparty::Address(
            CounterpartyAddress::parse(network, s, BitcoinNetwork::Mainnet).unwrap(),
        )
    }

    #[test]
    fn every_network_has_a_transak_name() {
        let names: Vec<_> = Network::ALL
            .into_iter()
            .map(|n| transak_network(n, false))
            .collect();
        assert_eq!(
            names,
            ["bitcoin", "ethereum", "polygon", "solana", "bsc", "tron"]
        );
        assert_eq!(transak_network(Network::Btc, true), "lightning");
        // Lightning is a BTC-only notion; elsewhere the flag changes nothing.
        assert_eq!(transak_network(Network::Eth, true), "ethereum");
    }

    #[test]
    fn on_chain_request() {
        let r = request(
            "btc",
            "BTC",
            address(Network::Btc, "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"),
        );
        assert_eq!(
            widget_params(&config(), &r),
            json!({
                "apiKey": "api-key-1",
                "referrerDomain": "partner.example.com",
                "cryptoCurrencyCode": "BTC",
                "network": "bitcoin",
                "walletAddress": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
                "partnerOrderId": "01930000-0000-7000-8000-000000000001",
                "partnerCustomerId": "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44",
                "productsAvailed": "SELL",
                "themeColor": "1a2b3c",
                "hideMenu": true,
            })
        );
    }

    #[test]
    fn lightning_request_has_no_wallet_address() {
        let hash =
            PaymentHash::parse("0001020304050607080900010203040506070809000102030405060708090102")
                .unwrap();
        let r = request(
            "BTC",
            "BTC",
            Counterparty::Lightning(LightningPayment {
                payment_hash: hash,
                invoice: None,
            }),
        );
        let params = widget_params(&config(), &r);
        assert_eq!(params["network"], "lightning");
        assert_eq!(params["cryptoCurrencyCode"], "BTC");
        assert!(params.get("walletAddress").is_none());
        assert_eq!(
            params["partnerCustomerId"],
            "7f0c2a52-8f7e-4c3e-9a61-2f1d7e1b9c44"
        );
    }

    #[test]
    fn tokens_use_their_own_currency_code_and_the_mapped_network() {
        let r = request(
            "usdt",
            "eth",
            address(Network::Eth, "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"),
        );
        let params = widget_params(&config(), &r);
        assert_eq!(params["cryptoCurrencyCode"], "USDT");
        assert_eq!(params["network"], "ethereum");
        let r = request(
            "TRX",
            "TRON",
            address(Network::Tron, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
        );
        let params = widget_params(&config(), &r);
        assert_eq!(params["network"], "tron");
        assert_eq!(
            params["walletAddress"],
            "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
        );
    }

    #[test]
    fn no_extras_means_only_the_mandatory_params() {
        let config = TransakConfig::builder(
            Environment::Production,
            "k",
            SecretString::from("s"),
            "d.example",
        )
        .build()
        .unwrap();
        let r = request(
            "SOL",
            "SOL",
            address(Network::Sol, "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"),
        );
        let params = widget_params(&config, &r);
        let mut keys: Vec<_> = params.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "apiKey",
                "cryptoCurrencyCode",
                "network",
                "partnerCustomerId",
                "partnerOrderId",
                "referrerDomain",
                "walletAddress"
            ]
        );
        assert_eq!(params["network"], "solana");
    }
}
