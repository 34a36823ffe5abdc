// SPDX-License-Identifier: BSD-3-Clause
// Loading the public certificate and key into an SSL_CTX with hubd's TLS
// policy, checking the key file's permissions, and OCSP stapling from a file.
#include "http/tls_context.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

namespace hubd::http {

namespace {

// Mozilla's "intermediate" profile without DHE: ECDHE key exchange (forward
// secrecy) and AEAD ciphers (no CBC: Lucky13, padding oracles) for TLS 1.2;
// TLS 1.3 suites are all forward-secret AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";
constexpr size_t kMaxPemBytes = 1024 * 1024;
constexpr long kExpiryWarningDays = 14;

struct X509Deleter {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
using UniqueX509 = std::unique_ptr<X509, X509Deleter>;
struct PkeyDeleter {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using UniquePkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
struct BioDeleter {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using UniqueBio = std::unique_ptr<BIO, BioDeleter>;

// OpenSSL's reason for the last failure, for messages ("ee key too small").
std::string sslReason() {
    unsigned long err = ERR_peek_last_error();
    ERR_clear_error();
    if (err == 0) return "unknown reason";
    const char* reason = ERR_reason_error_string(err);
    return reason ? reason : fmt::format("error {:#x}", err);
}

std::string hubUser() {
    if (const passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
    return std::to_string(::geteuid());
}

// Whether every directory above `path` lets other users through (o+x):
// a 0644 key inside a 0700 directory (certbot's archive/) is not readable
// by them, whatever its own mode says.
bool reachableByOthers(const std::string& path) {
    char resolved[PATH_MAX];
    if (!::realpath(path.c_str(), resolved)) return true;
    std::string dir = resolved;
    for (;;) {
        size_t slash = dir.rfind('/');
        if (slash == std::string::npos) return true;
        dir.resize(slash == 0 ? 1 : slash);
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0) return true;
        if (!(st.st_mode & S_IXOTH)) return false;
        if (dir == "/") return true;
    }
}

std::string groupName(gid_t gid) {
    if (const group* g = ::getgrgid(gid)) return g->gr_name;
    return std::to_string(gid);
}

// The key file's mode: group-readable warns, world-readable is refused
// unless allowed. Checked on the open descriptor, so what is checked is
// what is read.
void checkKeyMode(const std::string& path, const struct stat& st, bool allowWorld,
                  std::vector<std::string>& warnings) {
    unsigned mode = st.st_mode & 07777;
    if ((st.st_mode & S_IROTH) && reachableByOthers(path)) {
        std::string text = fmt::format(
            "TLS private key {} is readable by every user on this machine (mode {:04o}), so any of them "
            "can impersonate this hub: run chmod 600 {} (or chmod 640 with a group that only the hub user "
            "is in)",
            path, mode, path);
        if (!allowWorld)
            throw TlsError(text + "; to start anyway, set JupyterHub.ssl_allow_world_readable_key = True");
        warnings.push_back(text + " (started anyway: JupyterHub.ssl_allow_world_readable_key is True)");
        return;
    }
    if (st.st_mode & (S_IRGRP | S_IWGRP))
        warnings.push_back(fmt::format(
            "TLS private key {} is readable by group {} (mode {:04o}): every member can impersonate this "
            "hub; run chmod 600 {} unless that group holds only the hub user (chmod 640 is then fine)",
            path, groupName(st.st_gid), mode, path));
}

// Reads a PEM/DER file of reasonable size. `what` names it in messages
// ("certificate", "private key", "OCSP response") along with `trait`.
std::string readFile(const std::string& path, std::string_view what, std::string_view trait, bool isKey,
                     bool allowWorld, std::vector<std::string>& warnings) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            throw TlsError(
                fmt::format("TLS {} {} does not exist: set {} to the file (Let's Encrypt: "
                            "/etc/letsencrypt/live/<domain>/{})",
                            what, path, trait, isKey ? "privkey.pem" : "fullchain.pem"));
        if (err == EACCES)
            throw TlsError(fmt::format(
                "TLS {} {} is not readable by the hub user {}: give that user read access, e.g. chown {} {} "
                "&& chmod 600 {} (for Let's Encrypt, copy the files in a certbot deploy hook)",
                what, path, hubUser(), hubUser(), path, path));
        throw TlsError(
            fmt::format("cannot open TLS {} {}: {}; check {}", what, path, std::strerror(err), trait));
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        throw TlsError(
            fmt::format("TLS {} {} is not a regular file: set {} to the file itself", what, path, trait));
    if (st.st_size > static_cast<off_t>(kMaxPemBytes))
        throw TlsError(
            fmt::format("TLS {} {} is larger than 1 MiB: is {} the right file?", what, path, trait));
    if (isKey) checkKeyMode(path, st, allowWorld, warnings);
    std::string content(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < content.size()) {
        ssize_t n = ::read(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw TlsError(fmt::format("cannot read TLS {} {}: {}", what, path, std::strerror(errno)));
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    content.resize(done);
    return content;
}

// hubd never prompts: an encrypted key is an error with the command that decrypts it.
int noPassphrase(char*, int, int, void* flag) {
    *static_cast<bool*>(flag) = true;
    return -1;
}

time_t asn1ToTime(const ASN1_TIME* t) {
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return ::timegm(&tm);
}

std::string formatUtc(time_t t) {
    struct tm tm {};
    ::gmtime_r(&t, &tm);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
    return text;
}

std::string subjectName(X509* cert) {
    char cn[256] = "";
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
        return std::string("CN=") + cn;
    return "(no CN)";
}

// ---------------------------------------------------------------------------
// OCSP stapling

// The response to staple, kept with the SSL_CTX it belongs to (ex_data, freed
// with the context): old contexts keep theirs until their last session ends.
struct OcspStaple {
    std::string der;
    time_t nextUpdate = 0;
    std::string file;
    bool expiryLogged = false;
};

void freeStaple(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<OcspStaple*>(ptr);
}

int stapleIndex() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, freeStaple);
    return index;
}

int staplingCallback(SSL* ssl, void*) {
    auto* staple = static_cast<OcspStaple*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), stapleIndex()));
    if (!staple || staple->der.empty()) return SSL_TLSEXT_ERR_NOACK;
    if (::time(nullptr) > staple->nextUpdate) {
        // A stale response makes strict clients fail: send none instead.
        if (!staple->expiryLogged) {
            staple->expiryLogged = true;
            fmt::print(stderr,
                       "hubd: tls: the OCSP response in {} expired at {}; no longer stapling it: refresh the "
                       "file (openssl ocsp ... -respout) and send hubd SIGHUP\n",
                       staple->file, formatUtc(staple->nextUpdate));
        }
        return SSL_TLSEXT_ERR_NOACK;
    }
    auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(staple->der.size()));
    if (!copy) return SSL_TLSEXT_ERR_NOACK;
    std::memcpy(copy, staple->der.data(), staple->der.size());
    // OpenSSL takes ownership of the copy.
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(staple->der.size()));
    return SSL_TLSEXT_ERR_OK;
}

// Checks that `der` is a successful, current OCSP response for `leaf`
// issued by a certificate of `chain`; returns the staple or why not.
std::unique_ptr<OcspStaple> parseStaple(const std::string& der, const std::string& file, X509* leaf,
                                        STACK_OF(X509) * chain, std::string& why) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<OCSP_RESPONSE, decltype(&OCSP_RESPONSE_free)> response(
        d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())), OCSP_RESPONSE_free);
    if (!response) {
        why = "it is not a DER-encoded OCSP response (openssl ocsp ... -respout FILE writes one)";
        return nullptr;
    }
    if (OCSP_response_status(response.get()) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        why = fmt::format("the responder answered '{}'",
                          OCSP_response_status_str(OCSP_response_status(response.get())));
        return nullptr;
    }
    std::unique_ptr<OCSP_BASICRESP, decltype(&OCSP_BASICRESP_free)> basic(
        OCSP_response_get1_basic(response.get()), OCSP_BASICRESP_free);
    X509* issuer = nullptr;
    for (int i = 0; chain && i < sk_X509_num(chain); ++i)
        if (X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK) issuer = sk_X509_value(chain, i);
    if (!issuer) {
        why = "the certificate file holds no issuer certificate to match it against (use the full chain)";
        return nullptr;
    }
    std::unique_ptr<OCSP_CERTID, decltype(&OCSP_CERTID_free)> id(OCSP_cert_to_id(nullptr, leaf, issuer),
                                                                 OCSP_CERTID_free);
    int status = -1, reason = -1;
    ASN1_GENERALIZEDTIME *revoked = nullptr, *thisUpdate = nullptr, *nextUpdate = nullptr;
    if (!basic || !id ||
        OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, &revoked, &thisUpdate, &nextUpdate) !=
            1) {
        why = "it is not about this certificate (was it fetched for the previous one?)";
        return nullptr;
    }
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        why = fmt::format("it says the certificate is {}", OCSP_cert_status_str(status));
        return nullptr;
    }
    if (OCSP_check_validity(thisUpdate, nextUpdate, 300, -1) != 1) {
        ERR_clear_error();
        why = "it has expired or is not valid yet";
        return nullptr;
    }
    auto staple = std::make_unique<OcspStaple>();
    staple->der = der;
    staple->file = file;
    // Without nextUpdate the responder promises nothing: a week, like the CAs' usual.
    staple->nextUpdate = nextUpdate ? asn1ToTime(nextUpdate) : asn1ToTime(thisUpdate) + 7 * 24 * 3600;
    return staple;
}

void attachStaple(SSL_CTX* ctx, const TlsSettings& settings, X509* leaf, STACK_OF(X509) * chain,
                  std::vector<std::string>& warnings, std::string& summary) {
    bool explicitFile = !settings.ocspFile.empty();
    std::string file = explicitFile ? settings.ocspFile : settings.certFile + ".ocsp";
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
        if (explicitFile)
            warnings.push_back(fmt::format(
                "no OCSP response at {} (JupyterHub.ssl_ocsp_response): not stapling; write it with "
                "openssl ocsp -issuer CHAIN -cert CERT -url URL -respout {} and send hubd SIGHUP",
                file, file));
        return;
    }
    std::string der;
    try {
        der = readFile(file, "OCSP response", "JupyterHub.ssl_ocsp_response", false, true, warnings);
    } catch (const TlsError& e) {
        warnings.push_back(std::string(e.what()) + "; not stapling");
        return;
    }
    std::string why;
    auto staple = parseStaple(der, file, leaf, chain, why);
    if (!staple) {
        warnings.push_back(fmt::format(
            "not stapling the OCSP response in {}: {}; refresh it and send hubd SIGHUP", file, why));
        return;
    }
    summary += fmt::format(", OCSP response stapled (valid until {})", formatUtc(staple->nextUpdate));
    SSL_CTX_set_ex_data(ctx, stapleIndex(), staple.release());
    SSL_CTX_set_tlsext_status_cb(ctx, staplingCallback);
}

// ---------------------------------------------------------------------------

}  // namespace

UniqueSslCtx newPolicyContext(bool server) {
    UniqueSslCtx ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
    if (!ctx) throw TlsError("cannot create a TLS context: " + sslReason());
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
    // RSA keys of 2048 bits or more, ECC of 224 or more, SHA-1 signatures refused.
    SSL_CTX_set_security_level(c, 2);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION                  // CRIME
                               | SSL_OP_CIPHER_SERVER_PREFERENCE  // our order, not the client's
                               // No renegotiation (client-initiated is off by default in 3.0,
                               // this refuses the rest): no renegotiation DoS or confusion.
                               | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_NO_TICKET  // see below
                               // A TCP FIN without close_notify is an end of stream: HTTP's own
                               // framing detects a cut-off request, and most clients close that way.
                               | SSL_OP_IGNORE_UNEXPECTED_EOF);
    // No session resumption at all: no ticket keys to rotate or leak (a
    // stolen ticket key decrypts every TLS 1.2 session resumed with it), no
    // session cache to bound. Browsers keep connections alive, so a full
    // handshake per new connection costs little (docs/security-model.md).
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 0);
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 || SSL_CTX_set_ciphersuites(c, kTls13Suites) != 1 ||
        SSL_CTX_set1_groups_list(c, kGroups) != 1)
        throw TlsError("cannot set hubd's TLS cipher policy: " + sslReason());
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            // An idle connection (a kernel's WebSocket) keeps no 2×16 KiB of buffers.
                            SSL_MODE_RELEASE_BUFFERS);
    // Fewer recv calls: a record header and body in one.
    SSL_CTX_set_read_ahead(c, 1);
    return ctx;
}

namespace {

struct Loaded {
    UniqueSslCtx ctx;
    std::string summary;
};

Loaded build(const TlsSettings& s, std::vector<std::string>& warnings) {
    if (s.certFile.empty())
        throw TlsError("TLS needs a certificate: set JupyterHub.ssl_cert (and JupyterHub.ssl_key)");
    ERR_clear_error();
    const std::string keyPath = s.keyFile.empty() ? s.certFile : s.keyFile;
    std::string certPem = readFile(s.certFile, "certificate", "JupyterHub.ssl_cert", s.keyFile.empty(),
                                   s.allowWorldReadableKey, warnings);
    std::string keyPem = s.keyFile.empty() ? certPem
                                           : readFile(s.keyFile, "private key", "JupyterHub.ssl_key", true,
                                                      s.allowWorldReadableKey, warnings);

    // Certificate, then the chain (PEM blocks of other types are skipped).
    UniqueBio certBio(BIO_new_mem_buf(certPem.data(), static_cast<int>(certPem.size())));
    UniqueX509 leaf(PEM_read_bio_X509_AUX(certBio.get(), nullptr, nullptr, nullptr));
    if (!leaf)
        throw TlsError(
            fmt::format("no certificate (-----BEGIN CERTIFICATE-----) in {}: set JupyterHub.ssl_cert "
                        "to the certificate chain file (Let's Encrypt: fullchain.pem)",
                        s.certFile));
    std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> chain(
        sk_X509_new_null(), [](STACK_OF(X509) * st) { sk_X509_pop_free(st, X509_free); });
    while (X509* extra = PEM_read_bio_X509(certBio.get(), nullptr, nullptr, nullptr))
        sk_X509_push(chain.get(), extra);
    ERR_clear_error();  // the end of the file reads as "no start line"

    bool encrypted = false;
    UniqueBio keyBio(BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size())));
    UniquePkey key(PEM_read_bio_PrivateKey(keyBio.get(), nullptr, noPassphrase, &encrypted));
    std::string().swap(keyPem);  // the key's text is not kept
    if (!key) {
        ERR_clear_error();
        if (encrypted)
            throw TlsError(fmt::format(
                "the TLS private key in {} is protected by a passphrase, which hubd cannot ask for: decrypt "
                "it with openssl pkey -in {} -out NEWFILE (then chmod 600 NEWFILE) and set "
                "JupyterHub.ssl_key to NEWFILE",
                keyPath, keyPath));
        if (s.keyFile.empty())
            throw TlsError(
                fmt::format("{} holds no private key: set JupyterHub.ssl_key to the key file "
                            "(Let's Encrypt: privkey.pem next to fullchain.pem)",
                            s.certFile));
        throw TlsError(
            fmt::format("no private key (-----BEGIN PRIVATE KEY-----) in {}: set JupyterHub.ssl_key "
                        "to the key of the certificate (Let's Encrypt: privkey.pem)",
                        keyPath));
    }

    UniqueSslCtx ctx = newPolicyContext();
    SSL_CTX* c = ctx.get();
    if (SSL_CTX_use_certificate(c, leaf.get()) != 1)
        throw TlsError(
            fmt::format("the certificate in {} cannot be used: {} (RSA keys need 2048 bits or more)",
                        s.certFile, sslReason()));
    for (int i = 0; i < sk_X509_num(chain.get()); ++i)
        if (SSL_CTX_add1_chain_cert(c, sk_X509_value(chain.get(), i)) != 1)
            throw TlsError(fmt::format("certificate {} of the chain in {} cannot be used: {}", i + 2,
                                       s.certFile, sslReason()));
    if (SSL_CTX_use_PrivateKey(c, key.get()) != 1 || SSL_CTX_check_private_key(c) != 1) {
        ERR_clear_error();
        throw TlsError(fmt::format(
            "the private key in {} does not belong to the certificate in {}: set JupyterHub.ssl_key to the "
            "key this certificate was issued for (Let's Encrypt: privkey.pem from the same live/<domain>/ "
            "directory as fullchain.pem)",
            keyPath, s.certFile));
    }

    // Dates: warnings, not errors, so that a forgotten renewal still serves
    // (browsers show the expiry to users) and the log says what to do.
    time_t now = ::time(nullptr);
    time_t notAfter = asn1ToTime(X509_get0_notAfter(leaf.get()));
    time_t notBefore = asn1ToTime(X509_get0_notBefore(leaf.get()));
    if (notAfter < now)
        warnings.push_back(
            fmt::format("the TLS certificate in {} expired on {}: browsers will refuse it; renew it "
                        "(certbot renew) and send hubd SIGHUP",
                        s.certFile, formatUtc(notAfter)));
    else if (notAfter - now < kExpiryWarningDays * 24 * 3600)
        warnings.push_back(
            fmt::format("the TLS certificate in {} expires on {}: renew it soon and send hubd SIGHUP",
                        s.certFile, formatUtc(notAfter)));
    if (notBefore > now)
        warnings.push_back(fmt::format("the TLS certificate in {} is not valid before {}: check the clock",
                                       s.certFile, formatUtc(notBefore)));
    if (sk_X509_num(chain.get()) == 0 && X509_check_issued(leaf.get(), leaf.get()) != X509_V_OK)
        warnings.push_back(fmt::format(
            "{} holds only the server certificate, no intermediate: clients that do not already have the "
            "issuer will refuse it; use the full chain (Let's Encrypt: fullchain.pem, not cert.pem)",
            s.certFile));

    std::string summary = fmt::format("{}, valid until {}", subjectName(leaf.get()), formatUtc(notAfter));
    attachStaple(c, s, leaf.get(), chain.get(), warnings, summary);
    return {std::move(ctx), std::move(summary)};
}

}  // namespace

void SslCtxDeleter::operator()(SSL_CTX* ctx) const noexcept {
    SSL_CTX_free(ctx);
}

TlsContext::TlsContext(TlsSettings settings, std::vector<std::string>& warnings)
    : settings_(std::move(settings)) {
    Loaded loaded = build(settings_, warnings);
    ctx_ = std::move(loaded.ctx);
    summary_ = std::move(loaded.summary);
}

TlsContext::TlsContext(UniqueSslCtx ctx, std::string summary)
    : ctx_(std::move(ctx)), summary_(std::move(summary)) {}

TlsContext::~TlsContext() = default;

bool TlsContext::reload(std::vector<std::string>& warnings, std::string& error) {
    if (settings_.certFile.empty()) {
        error = "this certificate was made in memory (internal TLS): there is no file to reload";
        return false;
    }
    try {
        Loaded loaded = build(settings_, warnings);
        // Sessions hold their own reference to the old context.
        ctx_ = std::move(loaded.ctx);
        summary_ = std::move(loaded.summary);
        return true;
    } catch (const TlsError& e) {
        error = e.what();
        return false;
    }
}

UniqueSsl TlsContext::newSession(int fd) const {
    UniqueSsl ssl(SSL_new(ctx_.get()));
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
        ERR_clear_error();
        return nullptr;
    }
    SSL_set_accept_state(ssl.get());
    return ssl;
}

}  // namespace hubd::http
