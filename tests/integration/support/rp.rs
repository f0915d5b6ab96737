//! The relying party: the `openidconnect` crate, knowing nothing but the issuer URL.

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, RedirectUrl,
};

pub type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

pub fn http() -> reqwest::Client {
    super::init();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Discovers the provider and builds a client for `client_id`.
pub async fn discover(issuer: &str, client_id: &str, secret: Option<String>, redirect: &str) -> Rp {
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(issuer.to_string()).expect("issuer"),
        &http(),
    )
    .await
    .expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.to_string()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.to_string()).expect("redirect"))
}
