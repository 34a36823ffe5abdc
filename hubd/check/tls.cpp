// SPDX-License-Identifier: BSD-3-Clause
// Public TLS (JupyterHub.ssl_cert / ssl_key): the files load exactly as
// hubd will load them (http::TlsContext: readable, key matches), the key is
// private, the certificate is within its dates, and its chain is complete.
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include "check/check.h"
#include "check/fs.h"
#include "http/tls_context.h"

namespace hubd::check {
namespace {

constexpr long kWarnDays = 14;

struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
struct StackFree {
    void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509Stack = std::unique_ptr<STACK_OF(X509), StackFree>;
struct StoreFree {
    void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
    void operator()(X509_STORE_CTX* s) const { X509_STORE_CTX_free(s); }
};

std::string dn(const X509_NAME* name) {
    char buf[256];
    X509_NAME_oneline(name, buf, sizeof buf);
    return buf;
}

std::string utc(time_t t) {
    char buf[64];
    tm parts{};
    ::gmtime_r(&t, &parts);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &parts);
    return buf;
}

time_t asn1Time(const ASN1_TIME* t) {
    tm parts{};
    ASN1_TIME_to_tm(t, &parts);
    return ::timegm(&parts);
}

// Verifies leaf + chain (time not checked: the dates are a check of their
// own) against `trusted` plus the system store. 0 when it verifies, else
// OpenSSL's X509_V_ERR_*; `root` is the subject it ended at.
int verify(X509* leaf, STACK_OF(X509) * chain, STACK_OF(X509) * trusted, std::string& root,
           std::string& missing) {
    std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
    X509_STORE_set_default_paths(store.get());
    for (int i = 0; trusted && i < sk_X509_num(trusted); ++i)
        X509_STORE_add_cert(store.get(), sk_X509_value(trusted, i));
    std::unique_ptr<X509_STORE_CTX, StoreCtxFree> vctx(X509_STORE_CTX_new());
    X509_STORE_CTX_init(vctx.get(), store.get(), leaf, chain);
    X509_STORE_CTX_set_flags(vctx.get(), X509_V_FLAG_NO_CHECK_TIME);
    int ok = X509_verify_cert(vctx.get());
    int err = ok == 1 ? 0 : X509_STORE_CTX_get_error(vctx.get());
    if (STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(vctx.get()); built && sk_X509_num(built) > 0) {
        X509* last = sk_X509_value(built, sk_X509_num(built) - 1);
        root = dn(X509_get_subject_name(last));
        missing = dn(X509_get_issuer_name(last));  // when it failed: the issuer it could not find
    }
    ERR_clear_error();
    return err;
}

std::string reloadFix() {
    return "kill -HUP $(pidof hubd)";
}

void checkDates(const std::string& cert, X509* leaf, Report& r) {
    const time_t now = ::time(nullptr);
    const time_t notAfter = asn1Time(X509_get0_notAfter(leaf)),
                 notBefore = asn1Time(X509_get0_notBefore(leaf));
    const bool letsEncrypt = cert.rfind("/etc/letsencrypt/", 0) == 0;
    const std::string renew =
        letsEncrypt ? "certbot renew && " + reloadFix()
                    : reloadFix() + "  # after replacing " + cert + " with a renewed certificate";
    if (notAfter < now)
        r.fail("TLS certificate dates", cert + " expired on " + utc(notAfter) + ": browsers refuse it",
               renew);
    else if (notBefore > now)
        r.fail("TLS certificate dates",
               cert + " is not valid before " + utc(notBefore) + ": is the clock right?",
               "timedatectl status");
    else if (notAfter - now < kWarnDays * 86400)
        r.warn("TLS certificate dates",
               fmt::format("{} expires on {} (in {} days)", cert, utc(notAfter), (notAfter - now) / 86400),
               renew);
    else
        r.pass("TLS certificate dates",
               fmt::format("valid until {} ({} days)", utc(notAfter), (notAfter - now) / 86400));
}

void checkChain(const Context& ctx, const std::string& cert, X509* leaf, STACK_OF(X509) * chain, Report& r) {
    std::string root;
    std::string issuer;
    int err = verify(leaf, chain, nullptr, root, issuer);
    if (err == 0) {
        r.pass("TLS certificate chain", "complete up to " + root + " (in the system trust store)");
        return;
    }
    // A private CA: its root in the file counts as the end of the chain.
    X509Stack selfSigned(sk_X509_new_null());
    if (X509_check_issued(leaf, leaf) == X509_V_OK) sk_X509_push(selfSigned.get(), X509_dup(leaf));
    for (int i = 0; i < sk_X509_num(chain); ++i) {
        X509* c = sk_X509_value(chain, i);
        if (X509_check_issued(c, c) == X509_V_OK) sk_X509_push(selfSigned.get(), X509_dup(c));
    }
    if (sk_X509_num(selfSigned.get()) > 0 && verify(leaf, chain, selfSigned.get(), root, issuer) == 0) {
        r.pass("TLS certificate chain",
               "complete up to " + root +
                   " (a root in the file, not in the system trust store: clients must trust it)");
        return;
    }
    const std::string dir = cert.substr(0, cert.rfind('/'));
    std::string fix;
    if (cert.size() > 9 && cert.substr(cert.size() - 9) == "/cert.pem" &&
        ::access((dir + "/fullchain.pem").c_str(), R_OK) == 0)
        fix = "sed -i 's|" + cert + "|" + dir + "/fullchain.pem|' " +
              (ctx.configFile ? *ctx.configFile : "jupyterhub_config.py");
    else
        fix = "cat " + cert + " ISSUER.pem > " + cert + ".full && mv " + cert + ".full " + cert +
              "  # ISSUER.pem: the certificate of " + issuer;
    r.fail("TLS certificate chain",
           fmt::format(
               "{} does not chain to a trusted root ({}): the issuer {} is neither in the file nor in the "
               "system trust store, so clients refuse it",
               cert, X509_verify_cert_error_string(err), issuer),
           fix);
}

}  // namespace

void checkTls(Context& ctx, Report& r) {
    const hub::Settings& s = ctx.settings;
    const char* names[] = {"TLS certificate and key", "TLS key permissions", "TLS certificate dates",
                           "TLS certificate chain"};
    if (s.sslCert.empty()) {
        for (const char* n : names) r.skip(n, "TLS is off (JupyterHub.ssl_cert is not set)");
        return;
    }
    const std::string cert = s.sslCert, key = s.sslKey.empty() ? s.sslCert : s.sslKey;

    // Exactly what hubd will do at start: read both files, check the key belongs to the certificate.
    bool loaded = true;
    try {
        std::vector<std::string> ignored;  // dates and chain are reported below, one check each
        http::TlsContext tls({cert, s.sslKey, s.sslOcspResponse, true}, ignored);
        r.pass(names[0], tls.summary() + "; the key matches");
    } catch (const std::exception& e) {
        std::string what = e.what();
        std::string fix;
        if (what.find("not readable by the hub user") != std::string::npos)
            fix = "chgrp " + groupName(ctx.hub.gid) + " " + key + " && chmod 640 " + key;
        else if (what.find("does not belong") != std::string::npos)
            fix = "openssl x509 -noout -pubkey -in " + cert + " | sha256sum; openssl pkey -pubout -in " +
                  key + " | sha256sum  # must print the same; set JupyterHub.ssl_key to the key that does";
        else
            fix = "openssl x509 -noout -subject -enddate -in " + cert;
        r.fail(names[0], what, fix);
        loaded = false;
    }

    // A key others can read is a FAIL even when everything else works.
    struct stat st {};
    if (::stat(key.c_str(), &st) != 0)
        r.skip(names[1], key + " cannot be examined");
    else if ((st.st_mode & S_IROTH) && reachableByOthers(key))
        r.fail(names[1],
               key + " is readable by every user (mode " + octal(st.st_mode) +
                   "): any of them can impersonate the hub",
               "chmod 600 " + key);
    else if ((st.st_mode & S_IRGRP) && st.st_gid != ctx.hub.gid)
        r.warn(names[1],
               key + " is readable by group " + groupName(st.st_gid) + " (mode " + octal(st.st_mode) + ")",
               "chmod 600 " + key);
    else
        r.pass(names[1], key + " owned by " + userName(st.st_uid) + ", mode " + octal(st.st_mode));
    if (!loaded) {
        r.skip(names[2], "the certificate did not load");
        r.skip(names[3], "the certificate did not load");
        return;
    }

    std::ifstream in(cert);
    std::stringstream text;
    text << in.rdbuf();
    const std::string pem = text.str();
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                  BIO_free);
    X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
    X509Stack chain(sk_X509_new_null());
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
        sk_X509_push(chain.get(), extra);
    ERR_clear_error();
    if (!leaf) {
        r.skip(names[2], "no certificate in " + cert);
        r.skip(names[3], "no certificate in " + cert);
        return;
    }
    checkDates(cert, leaf.get(), r);
    checkChain(ctx, cert, leaf.get(), chain.get(), r);
}

}  // namespace hubd::check
