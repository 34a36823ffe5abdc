// SPDX-License-Identifier: BSD-3-Clause
// /hub/api/groups…: JupyterHub 3.0's groups API (jupyterhub/apihandlers/
// groups.py) plus 4.0's PUT /groups/:name/properties.
//
// MUST: adding someone to a group that carries roles needs the requester to
// hold what those roles grant (a deliberate difference from 3.0, where a
// holder of `groups` can hand out any group's roles; docs/api-compatibility.md).
#include <algorithm>

#include "app/api_call.h"
#include "hubcore/audit.h"
#include "hubcore/log.h"
#include "hubcore/username.h"
#include "hubcore/utf8.h"

namespace hubd {
namespace {

Resource groupResource(std::string_view name) {
    Resource r;
    r.group = std::string(name);
    return r;
}

std::optional<std::string> validateGroupName(std::string_view name) {
    if (name.empty() || name.size() > 255) return std::string("group names are 1 to 255 bytes");
    for (size_t i = 0; i < name.size();) {
        size_t len = hub::utf8SequenceLength(name, i);
        if (len == 0) return std::string("group names must be UTF-8");
        auto c = static_cast<unsigned char>(name[i]);
        if (len == 1 && (c < 0x20 || c == 0x7f || c == '/'))
            return std::string("group names cannot contain '/' or control characters");
        i += len;
    }
    return std::nullopt;
}

class GroupRoutes {
public:
    GroupRoutes(Hub& hub, ApiCall& call) : hub_(hub), c_(call) {}

    void dispatch(const std::vector<std::string_view>& seg) {
        const std::string& m = c_.request.method;
        if (seg.size() == 1) {
            if (m == "GET") return list();
            if (m == "POST") return createMany();
            return methodNotAllowed();
        }
        std::string name(seg[1]);
        if (seg.size() == 2) {
            if (m == "GET") return get(name);
            if (m == "POST") return createOne(name);
            if (m == "DELETE") return remove(name);
            return methodNotAllowed();
        }
        if (seg.size() == 3 && seg[2] == "users") {
            if (m == "POST") return members(name, true);
            if (m == "DELETE") return members(name, false);
            return methodNotAllowed();
        }
        if (seg.size() == 3 && seg[2] == "properties")
            return m == "PUT" ? properties(name) : methodNotAllowed();
        c_.error(404, "Not Found");
    }

private:
    void methodNotAllowed() { c_.error(405, "Method Not Allowed"); }

    void audit(std::string_view event, std::string_view group, std::string_view detailKey = {},
               std::string_view detail = {}) {
        if (detailKey.empty())
            hub::audit(event, {{"group", group}, {"by", c_.principal.name}, {"source", c_.source}});
        else
            hub::audit(
                event,
                {{"group", group}, {"by", c_.principal.name}, {"source", c_.source}, {detailKey, detail}});
    }

    // 3.0's group_model with its access map: read:groups → users (and 4.0's
    // properties), read:groups:name → the name, read:roles:groups → roles.
    bool writeGroup(JsonWriter& w, const hub::GroupRecord& g) {
        const ScopeSet& held = c_.principal.scopes;
        Resource r = groupResource(g.name);
        bool full = holds(held, "read:groups", r);
        bool name = full || holds(held, "read:groups:name", r);
        bool roles = holds(held, "read:roles:groups", r);
        if (!(full || name || roles)) return false;
        w.beginObject();
        w.key("kind").value("group");
        w.key("name").value(g.name);
        if (roles) w.key("roles").stringArray(g.roles);
        if (full) {
            w.key("users").stringArray(g.users);
            w.key("properties").raw(g.properties);
        }
        w.endObject();
        return true;
    }

    void answerGroup(int status, std::string_view name) {
        const hub::GroupRecord* g = hub_.findGroup(name);
        std::string out;
        JsonWriter w(out);
        if (!g || !writeGroup(w, *g)) {
            out.clear();
            JsonWriter(out).beginObject().key("kind").value("group").key("name").value(name).endObject();
        }
        c_.json(status, std::move(out));
    }

    // {"users": [...]} → user ids; 400 naming the first unknown user.
    std::optional<std::vector<int64_t>> usersOf(const Json& list) {
        if (!list.isArray()) {
            c_.error(400, "users must be a list of usernames");
            return std::nullopt;
        }
        std::vector<int64_t> ids;
        for (const auto& item : list.items()) {
            if (!item.isString()) {
                c_.error(400, "users must be a list of usernames");
                return std::nullopt;
            }
            const auto* u = hub_.findUser(hub::normalizeUsername(item.asString()));
            if (!u) {
                c_.error(400, "No such user: " + hub::safe(item.asString(), 100));
                return std::nullopt;
            }
            ids.push_back(u->id);
        }
        return ids;
    }

    // Refuses (403) to add members to a group whose roles grant what the
    // requester lacks; groups without roles (the usual case) pass.
    bool mayJoin(const hub::GroupRecord& group, const std::vector<int64_t>& newMembers) {
        if (group.roles.empty()) return true;
        bool adminRole = std::find(group.roles.begin(), group.roles.end(), "admin") != group.roles.end();
        for (int64_t id : newMembers) {
            const auto* u = hub_.findUserById(id);
            if (!u || std::find(group.users.begin(), group.users.end(), u->name) != group.users.end())
                continue;
            auto beyond = scopesBeyondRequester(hub_, c_.principal, group.roles, u->name);
            if ((adminRole && !c_.principal.admin) || !beyond.empty()) {
                c_.error(403,
                         "Cannot add " + u->name + " to group " + group.name +
                             ": its roles grant scopes you do not hold " +
                             scopeList(adminRole && beyond.empty() ? std::vector<std::string>{"admin role"}
                                                                   : beyond));
                return false;
            }
        }
        return true;
    }

    void list() {
        const ScopeSet& held = c_.principal.scopes;
        auto it = held.find("list:groups");
        if (it == held.end())
            return c_.error(403,
                            "Action is not authorized with current scopes; requires any of [list:groups]");
        const ScopeFilter& filter = it->second;
        // As 3.0: only !group= filters make sense here; others must not widen.
        if (!filter.all && (!filter.users.empty() || !filter.servers.empty() || !filter.services.empty()))
            return c_.error(403, "No access to groups");
        auto page = parsePage(c_, hub_.settings());
        if (!page) return;
        std::vector<const hub::GroupRecord*> matches;
        for (const auto& g : hub_.groups())
            if (appliesTo(filter, groupResource(g.name))) matches.push_back(&g);
        auto total = static_cast<int64_t>(matches.size());
        std::string out;
        JsonWriter w(out);
        beginPage(w, *page);
        for (int64_t i = page->offset; i < total && i < page->offset + page->limit; ++i)
            writeGroup(w, *matches[static_cast<size_t>(i)]);
        endPage(w, *page, total, hub_, c_.request);
        c_.json(200, std::move(out));
    }

    void get(const std::string& name) {
        if (!c_.require({"read:groups", "read:groups:name", "read:roles:groups"}, groupResource(name)))
            return;
        if (!hub_.findGroup(name)) return c_.error(404, "No such group: " + hub::safe(name, 100));
        answerGroup(200, name);
    }

    // Body keys a group model may carry on creation.
    bool checkKeys(const Json& body, std::initializer_list<std::string_view> allowed) {
        if (body.isNull()) return true;
        if (!body.isObject()) {
            c_.error(400, "Request body must be a JSON object");
            return false;
        }
        for (const auto& [key, value] : body.members())
            if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
                c_.error(400, "Invalid key in request body: " + hub::safe(key, 50));
                return false;
            }
        return true;
    }

    void create(const std::vector<std::string>& names, const Json& body, bool many) {
        std::vector<int64_t> members;
        if (const Json* users = body.isObject() ? body.find("users") : nullptr) {
            auto ids = usersOf(*users);
            if (!ids) return;
            members = std::move(*ids);
        }
        for (const auto& name : names) {
            if (auto err = validateGroupName(name)) return c_.error(400, "Invalid group name: " + *err);
            if (hub_.findGroup(name)) return c_.error(409, "Group " + name + " already exists");
        }
        hub_.createGroups(names, members);
        for (const auto& name : names) audit("group.create", name, "users", std::to_string(members.size()));
        hub::logInfo("Created {} group(s) via API by {}", names.size(), c_.principal.name);
        if (!many) return answerGroup(201, names[0]);
        std::string out;
        JsonWriter w(out);
        w.beginArray();
        for (const auto& name : names)
            if (const auto* g = hub_.findGroup(name)) writeGroup(w, *g);
        w.endArray();
        c_.json(201, std::move(out));
    }

    void createMany() {
        if (!c_.require({"admin:groups"}, {})) return;
        auto b = c_.body();
        if (!b || !checkKeys(*b, {"groups", "users"})) return;
        const Json* groups = b->isObject() ? b->find("groups") : nullptr;
        if (!groups || !groups->isArray() || groups->items().empty())
            return c_.error(400, "Must specify at least one group to create");
        std::vector<std::string> names;
        for (const auto& g : groups->items()) {
            if (!g.isString()) return c_.error(400, "groups must be a list of group names");
            if (std::find(names.begin(), names.end(), g.asString()) == names.end())
                names.push_back(g.asString());
        }
        create(names, *b, true);
    }

    void createOne(const std::string& name) {
        if (!c_.require({"admin:groups"}, groupResource(name))) return;
        auto b = c_.body();
        if (!b || !checkKeys(*b, {"users", "name"})) return;
        create({name}, *b, false);
    }

    void remove(const std::string& name) {
        if (!c_.require({"delete:groups"}, groupResource(name))) return;
        const auto* g = hub_.findGroup(name);
        if (!g) return c_.error(404, "No such group: " + hub::safe(name, 100));
        hub_.deleteGroup(g->id);
        audit("group.delete", name);
        hub::logInfo("Deleted group {} via API by {}", name, c_.principal.name);
        c_.noContent();
    }

    void members(const std::string& name, bool add) {
        if (!c_.require({"groups"}, groupResource(name))) return;
        const auto* g = hub_.findGroup(name);
        if (!g) return c_.error(404, "No such group: " + hub::safe(name, 100));
        auto b = c_.body();
        if (!b || !checkKeys(*b, {"users"})) return;
        const Json* users = b->isObject() ? b->find("users") : nullptr;
        if (!users) return c_.error(400, add ? "Must specify users to add" : "Must specify users to delete");
        auto ids = usersOf(*users);
        if (!ids) return;
        std::vector<int64_t> current;
        for (const auto& member : g->users)
            if (const auto* u = hub_.findUser(member)) current.push_back(u->id);
        if (add) {
            if (!mayJoin(*g, *ids)) return;
            current.insert(current.end(), ids->begin(), ids->end());
        } else {
            current.erase(std::remove_if(current.begin(), current.end(),
                                         [&](int64_t id) {
                                             return std::find(ids->begin(), ids->end(), id) != ids->end();
                                         }),
                          current.end());
        }
        hub_.setGroupMembers(g->id, current);
        std::string names;
        for (const auto& item : users->items()) names += (names.empty() ? "" : ",") + item.asString();
        audit(add ? "group.add_users" : "group.remove_users", name, "users", names);
        hub::logInfo("{} {} user(s) {} group {} via API by {}", add ? "Added" : "Removed", ids->size(),
                     add ? "to" : "from", name, c_.principal.name);
        answerGroup(200, name);
    }

    void properties(const std::string& name) {
        if (!c_.require({"groups"}, groupResource(name))) return;
        const auto* g = hub_.findGroup(name);
        if (!g) return c_.error(404, "No such group: " + hub::safe(name, 100));
        auto b = c_.body();
        if (!b) return;
        if (!b->isObject()) return c_.error(400, "Group properties must be a JSON object");
        std::string json = toJson(*b);
        if (json.size() > 65536) return c_.error(400, "Group properties are limited to 64 KiB of JSON");
        hub_.setGroupProperties(g->id, json);
        audit("group.properties", name);
        answerGroup(200, name);
    }

    Hub& hub_;
    ApiCall& c_;
};

}  // namespace

void handleGroupsApi(Hub& hub, ApiCall& call, const std::vector<std::string_view>& seg) {
    GroupRoutes(hub, call).dispatch(seg);
}

}  // namespace hubd
