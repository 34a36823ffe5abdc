// SPDX-License-Identifier: BSD-3-Clause
// The LDAP injection boundary: escaping a login name for DNs (RFC 4514) and
// search filters (RFC 4515), and the "{name}" templates of ldapauthenticator.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hub::ldap {

// An attribute value inside a search filter: '*', '(', ')', '\' and NUL
// become \2a, \28, \29, \5c and \00, so "*" matches only a literal star.
std::string escapeFilterValue(std::string_view value);

// An attribute value inside a DN: ',', '+', '"', '\', '<', '>', ';', '='
// get a backslash, NUL becomes \00, and so do a leading '#' or space and a
// trailing space, so "bob,ou=admins" stays one RDN value.
std::string escapeDnValue(std::string_view value);

// Python's str.format for the templates admins already have: "{name}" is
// replaced by its value (used as given: escape it first), "{{" and "}}" are
// literal braces. Anything else in braces (an unknown name, "{0}", a format
// spec) is an error, described in `error`.
using TemplateValues = std::vector<std::pair<std::string_view, std::string>>;
std::optional<std::string> formatTemplate(std::string_view tmpl, const TemplateValues& values,
                                          std::string& error);

// bind_dn_template with {username} replaced by the DN-escaped username.
std::optional<std::string> userDn(std::string_view tmpl, std::string_view username, std::string& error);

// lookup_dn_search_filter with {login_attr} (configuration, used as is) and
// {login} (the filter-escaped login name).
std::optional<std::string> lookupFilter(std::string_view tmpl, std::string_view loginAttr,
                                        std::string_view login, std::string& error);

// search_filter with {userattr} (user_attribute, configuration, used as is)
// and {username} (the filter-escaped name). An empty userAttr leaves
// {userattr} undefined, so a template that uses it is an error.
std::optional<std::string> userFilter(std::string_view tmpl, std::string_view userAttr,
                                      std::string_view username, std::string& error);

// group_search_filter (by default: the group names the user in member or
// uniqueMember by DN, or in memberUid by name) with {userdn} (the bound DN)
// and {uid} (the name), both filter-escaped: DN values may hold '*', '(', ')'.
std::optional<std::string> groupFilter(std::string_view tmpl, std::string_view userDn, std::string_view uid,
                                       std::string& error);

// True if the password is empty or only whitespace: a simple bind with an
// empty password is an unauthenticated bind (RFC 4513 5.1.2), which servers
// answer with success, so it must never be sent.
bool blankPassword(std::string_view password);

}  // namespace hub::ldap
