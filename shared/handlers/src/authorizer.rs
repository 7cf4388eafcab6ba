//! The `$connect` REQUEST authorizer.
//!
//! Finds the JWT in the `token` query parameter, the `Authorization: Bearer` header or the
//! `Sec-WebSocket-Protocol` header, verifies it, and answers Allow (with the caller in the
//! context) or Deny. API Gateway turns Deny into 403 before `$connect` runs, so bad, expired or
//! missing tokens never reach it.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use rnd_domain::identity::{AuthError, VerifyTokens, extract_token};
use serde_json::{Value, json};

use crate::context::keys;

/// Decides whether the connection may open.
///
/// Always answers a policy: Allow for `methodArn` with context `{userId, role, name, exp}`, or
/// Deny (principal `anonymous`, empty context). The reason for a Deny is logged, never the
/// token.
///
/// Runs in an `authorize` span (an X-Ray subsegment where the function is traced).
#[tracing::instrument(name = "authorize", skip_all)]
pub async fn authorize<V: VerifyTokens + ?Sized>(
    verifier: &V,
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> ApiGatewayCustomAuthorizerResponse {
    let method_arn = request.method_arn.clone().unwrap_or_else(|| "*".into());
    let query = request.query_string_parameters.first("token");
    let token = extract_token(query, |name| {
        request.headers.get(name).and_then(|v| v.to_str().ok())
    });
    let result = match token {
        Some(token) => verifier.verify(token).await,
        None => Err(AuthError::Missing),
    };
    match result {
        Ok(identity) => {
            tracing::info!(user_id = %identity.actor.user_id, role = %identity.actor.role, "connection authorized");
            policy(
                identity.actor.user_id.as_str(),
                IamPolicyEffect::Allow,
                &method_arn,
                json!({
                    keys::USER_ID: identity.actor.user_id.as_str(),
                    keys::ROLE: identity.actor.role.as_str(),
                    keys::NAME: identity.name.unwrap_or_default(),
                    keys::EXP: identity.expires_at.timestamp(),
                }),
            )
        }
        Err(reason) => {
            tracing::info!(%reason, "connection denied");
            policy("anonymous", IamPolicyEffect::Deny, &method_arn, json!({}))
        }
    }
}

fn policy(
    principal: &str,
    effect: IamPolicyEffect,
    resource: &str,
    context: Value,
) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = effect;
    statement.resource = vec![resource.into()];
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some("2012-10-17".into());
    document.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(principal.into());
    response.policy_document = document;
    response.context = context;
    response
}
