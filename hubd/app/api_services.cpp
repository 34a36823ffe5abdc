// SPDX-License-Identifier: BSD-3-Clause
// GET /hub/api/services and /hub/api/services/:name: JupyterHub 3.0's
// service model (jupyterhub/apihandlers/services.py), keys filtered by scope.
// hubd does not launch managed services, so pid is always 0.
#include "app/api_call.h"
#include "hubcore/log.h"

namespace hubd {
namespace {

Resource serviceResource(std::string_view name) {
    Resource r;
    r.service = std::string(name);
    return r;
}

const hub::ServiceSpec* specOf(const Hub& hub, const std::string& name) {
    for (const auto& spec : hub.settings().services)
        if (spec.name == name) return &spec;
    return nullptr;
}

// 3.0's access map: read:services → everything but roles,
// read:services:name → kind, name, admin; read:roles:services → + roles.
bool writeService(JsonWriter& w, const Hub& hub, const ScopeSet& held, const std::string& name,
                  const ServiceInfo& service) {
    Resource r = serviceResource(name);
    bool full = holds(held, "read:services", r);
    bool brief = full || holds(held, "read:services:name", r);
    bool roles = holds(held, "read:roles:services", r);
    if (!(full || brief || roles)) return false;
    w.beginObject();
    w.key("kind").value("service");
    w.key("name").value(name);
    w.key("admin").value(service.record.admin);
    if (roles) w.key("roles").stringArray(service.record.roles);
    if (full) {
        const hub::ServiceSpec* spec = specOf(hub, name);
        w.key("url").value(service.url);
        w.key("prefix").value(service.url.empty() ? std::string() : hub.baseUrl() + "services/" + name + "/");
        w.key("command").stringArray(spec ? spec->command : std::vector<std::string>{});
        w.key("pid").value(0);
        w.key("info").beginObject().endObject();
        w.key("display").value(true);
    }
    w.endObject();
    return true;
}

void listServices(Hub& hub, ApiCall& c) {
    auto it = c.principal.scopes.find("list:services");
    if (it == c.principal.scopes.end())
        return c.error(403, "Action is not authorized with current scopes; requires any of [list:services]");
    std::string out;
    JsonWriter w(out);
    w.beginObject();
    for (const auto& [name, service] : hub.services()) {
        if (!appliesTo(it->second, serviceResource(name))) continue;
        w.key(name);
        writeService(w, hub, c.principal.scopes, name, service);
    }
    w.endObject();
    c.json(200, std::move(out));
}

void getService(Hub& hub, ApiCall& c, const std::string& name) {
    if (!c.require({"read:services", "read:services:name", "read:roles:services"}, serviceResource(name)))
        return;
    auto it = hub.services().find(name);
    // 3.0 answers 500 here (a KeyError); a 404 is what it means.
    if (it == hub.services().end()) return c.error(404, "No such service: " + hub::safe(name, 100));
    std::string out;
    JsonWriter w(out);
    writeService(w, hub, c.principal.scopes, name, it->second);
    c.json(200, std::move(out));
}

}  // namespace

void handleServicesApi(Hub& hub, ApiCall& call, const std::vector<std::string_view>& seg) {
    const std::string& m = call.request.method;
    if (seg.size() > 2) return call.error(404, "Not Found");
    if (m != "GET") return call.error(405, "Method Not Allowed");
    if (seg.size() == 1) return listServices(hub, call);
    getService(hub, call, std::string(seg[1]));
}

}  // namespace hubd
