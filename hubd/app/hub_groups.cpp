// SPDX-License-Identifier: BSD-3-Clause
// Groups and role lookups for the groups API: write-through to the state
// database, then the in-memory view (groups_, each user's `groups`) reloaded,
// since a membership changes the scopes of every member.
#include <algorithm>

#include "app/hub.h"

namespace hubd {

const hub::GroupRecord* Hub::findGroup(std::string_view name) const {
    for (const auto& g : groups_)
        if (g.name == name) return &g;
    return nullptr;
}

void Hub::createGroups(const std::vector<std::string>& names, const std::vector<int64_t>& memberIds) {
    store_->transaction([&] {
        for (const auto& name : names) {
            hub::GroupRecord g = store_->createGroup(name);
            if (!memberIds.empty()) store_->setGroupMembers(g.id, memberIds);
        }
    });
    groupsChanged();
}

void Hub::deleteGroup(int64_t groupId) {
    store_->deleteGroup(groupId);
    groupsChanged();
}

void Hub::setGroupMembers(int64_t groupId, const std::vector<int64_t>& memberIds) {
    store_->setGroupMembers(groupId, memberIds);
    groupsChanged();
}

void Hub::setGroupProperties(int64_t groupId, const std::string& json) {
    store_->setGroupProperties(groupId, json);
    groupsChanged();
}

void Hub::groupsChanged() {
    groups_ = store_->allGroups();
    // UserRecord::groups is written back by updateUser: keep it current, or
    // the next PATCH of an unrelated key would undo this change.
    for (auto& [id, user] : usersById_) user.groups = groupsOf(user.name);
    modelCache_.clear();
}

bool Hub::roleExists(std::string_view role) const {
    return builtinRoleScopes(role) != nullptr || customRoles_.count(std::string(role)) > 0;
}

std::vector<std::string> Hub::roleScopes(std::string_view role) const {
    if (const auto* builtin = builtinRoleScopes(role)) return *builtin;
    auto it = customRoles_.find(std::string(role));
    return it == customRoles_.end() ? std::vector<std::string>{} : it->second.scopes;
}

}  // namespace hubd
