// SPDX-License-Identifier: BSD-3-Clause
// Tests of the presets' ID-token checks (app/oidc.h): Google's hd, Azure AD's tid.
#include <doctest/doctest.h>

#include "app/json.h"
#include "app/oidc.h"

using hubd::parseJson;

namespace {

hub::OAuthSettings requiring(std::string claim, std::vector<std::string> values) {
    hub::OAuthSettings s;
    s.requiredIdClaims.emplace_back(std::move(claim), std::move(values));
    return s;
}

}  // namespace

TEST_CASE("Google hosted_domain: the ID token's hd decides, not the email's domain") {
    const auto s = requiring("hd", {"example.org", "example.net"});
    CHECK(hubd::requiredClaimsProblem(s, *parseJson(R"({"email":"a@example.org","hd":"example.org"})"))
              .empty());
    CHECK(hubd::requiredClaimsProblem(s, *parseJson(R"({"hd":"example.net"})")).empty());
    // A personal account whose address looks right has no hd: refused.
    CHECK(hubd::requiredClaimsProblem(s, *parseJson(R"({"email":"a@example.org"})")) ==
          "the ID token has no 'hd' claim (an account outside the configured organisation)");
    CHECK(hubd::requiredClaimsProblem(s, *parseJson(R"({"email":"a@example.org","hd":"evil.org"})")) ==
          "the ID token's 'hd' claim is 'evil.org', not a configured one");
    CHECK_FALSE(hubd::requiredClaimsProblem(s, *parseJson(R"({"hd":["example.org"]})")).empty());
    CHECK_FALSE(hubd::requiredClaimsProblem(s, *parseJson(R"({"hd":"EXAMPLE.ORG.evil"})")).empty());
}

TEST_CASE("Azure AD tenant_id: the ID token's tid must be the tenant") {
    const auto s = requiring("tid", {"72f988bf-86f1-41af-91ab-2d7cd011db47"});
    CHECK(hubd::requiredClaimsProblem(s, *parseJson(R"({"tid":"72f988bf-86f1-41af-91ab-2d7cd011db47"})"))
              .empty());
    CHECK_FALSE(
        hubd::requiredClaimsProblem(s, *parseJson(R"({"tid":"9188040d-6c67-4c5b-b112-36a304b66dad"})"))
            .empty());
    CHECK_FALSE(hubd::requiredClaimsProblem(s, *parseJson(R"({})")).empty());
    // Without presets nothing is required.
    CHECK(hubd::requiredClaimsProblem(hub::OAuthSettings{}, *parseJson(R"({})")).empty());
}

TEST_CASE("Google with one hosted_domain: user@domain signs in as user") {
    hub::OAuthSettings s;
    CHECK(hubd::presetUsername(s, "ann@example.org") == "ann@example.org");
    s.stripDomain = "example.org";
    CHECK(hubd::presetUsername(s, "ann@example.org") == "ann");
    CHECK(hubd::presetUsername(s, "ann@sub.example.org") == "ann@sub.example.org");
    CHECK(hubd::presetUsername(s, "ann@evilexample.org") == "ann@evilexample.org");
    CHECK(hubd::presetUsername(s, "@example.org") == "@example.org");
}
