from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    """Adds the user's email and user name to the ID token and userinfo (OpenID Connect)."""

    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "preferred_username": "profile"}

    def get_additional_claims(self, request):
        return {"email": request.user.email, "preferred_username": request.user.username}
