// SPDX-License-Identifier: BSD-3-Clause
// Internal TLS (hubd/internal_ca.h, internal_tls.h, http/tls_client.h): CA
// files and their permissions, the certificates they sign, and the checks a
// real handshake makes (chain to the right CA, CN = the expected user).
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "http/tls_client.h"
#include "internal_ca.h"
#include "internal_tls.h"

using namespace hubd;

namespace {

// A refused handshake leaves one side writing to a closed socket.
const bool kNoSigpipe = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
}();

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/hubd-itls-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

unsigned modeOf(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(st.st_uid == ::geteuid());
    return st.st_mode & 07777;
}

X509Ptr parse(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    return cert;
}

// What `cert` verifies to against a store holding only `ca`, as a TLS server.
int verify(X509* ca, X509* cert) {
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, cert, nullptr);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    int ok = X509_verify_cert(ctx);
    int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return err;
}

std::vector<std::string> altNames(X509* cert) {
    std::vector<std::string> out;
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS) {
            out.push_back("DNS:" +
                          std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                                      static_cast<size_t>(ASN1_STRING_length(g->d.dNSName))));
        } else if (g->type == GEN_IPADD) {
            char text[INET6_ADDRSTRLEN] = "";
            const int len = ASN1_STRING_length(g->d.iPAddress);
            ::inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), text,
                        sizeof text);
            out.push_back(std::string("IP:") + text);
        }
    }
    GENERAL_NAMES_free(names);
    return out;
}

// A TLS server on one end of a socketpair, as a single-user server set up by
// JupyterHub's singleuser: its certificate, and client certificates required
// from `clientCa` only. Returns whether the handshake succeeded on each side.
struct Handshake {
    bool client = false, server = false;
};
Handshake handshake(const Leaf& serverLeaf, X509* clientCa, const http::TlsClientContext& client,
                    const std::string& expectedPeer) {
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    Handshake result;
    std::thread server([&] {
        SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
        SSL_CTX_use_certificate(ctx, serverLeaf.cert.get());
        SSL_CTX_use_PrivateKey(ctx, serverLeaf.key.get());
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), clientCa);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        SSL* ssl = SSL_new(ctx);
        SSL_set_fd(ssl, pair[1]);
        result.server = SSL_accept(ssl) == 1;
        if (result.server) {
            char c;
            result.server = SSL_read(ssl, &c, 1) == 1;  // TLS 1.3: client certificates are checked by now
        }
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        ::shutdown(pair[1], SHUT_RDWR);
    });
    http::UniqueSsl ssl = client.newSession(pair[0], expectedPeer);
    REQUIRE(ssl);
    result.client = SSL_connect(ssl.get()) == 1 && SSL_write(ssl.get(), "x", 1) == 1;
    ssl.reset();
    ::shutdown(pair[0], SHUT_RDWR);
    server.join();
    ::close(pair[0]);
    ::close(pair[1]);
    ERR_clear_error();
    return result;
}

}  // namespace

TEST_CASE("internal CA: created once with private modes, then reused") {
    TempDir tmp;
    const std::string dir = tmp.path + "/internal-ssl";
    bool created = false;
    InternalCa first = InternalCa::openOrCreate(dir, "servers", created);
    CHECK(created);
    CHECK(modeOf(dir) == 0700);
    CHECK(modeOf(dir + "/servers-ca.key") == 0600);
    CHECK(modeOf(dir + "/servers-ca.crt") == 0600);
    CHECK(X509_check_ca(first.cert()) >= 1);
    CHECK(http::certificateCommonName(first.cert()) == "hubd internal servers CA");

    InternalCa again = InternalCa::openOrCreate(dir, "servers", created);
    CHECK_FALSE(created);
    CHECK(again.certPem() == first.certPem());  // the same CA: servers survive hub restarts
    // A second CA beside it is a different one.
    InternalCa hubCa = InternalCa::openOrCreate(dir, "hub", created);
    CHECK(created);
    CHECK(hubCa.certPem() != first.certPem());
}

TEST_CASE("internal CA: wider permissions and half a CA are refused with the fix") {
    TempDir tmp;
    const std::string dir = tmp.path + "/ca";
    bool created = false;
    InternalCa::openOrCreate(dir, "hub", created);

    REQUIRE(::chmod((dir + "/hub-ca.key").c_str(), 0640) == 0);
    CHECK_THROWS_WITH_AS(InternalCa::openOrCreate(dir, "hub", created), doctest::Contains("chmod 600"),
                         InternalCaError);
    REQUIRE(::chmod((dir + "/hub-ca.key").c_str(), 0600) == 0);
    REQUIRE(::chmod(dir.c_str(), 0755) == 0);
    CHECK_THROWS_WITH_AS(InternalCa::openOrCreate(dir, "hub", created), doctest::Contains("chmod 700"),
                         InternalCaError);
    REQUIRE(::chmod(dir.c_str(), 0700) == 0);
    REQUIRE(::unlink((dir + "/hub-ca.crt").c_str()) == 0);
    CHECK_THROWS_WITH_AS(InternalCa::openOrCreate(dir, "hub", created), doctest::Contains("is missing"),
                         InternalCaError);
}

TEST_CASE("internal CA: a leaf names its owner, carries the alt names and both EKUs, and chains") {
    TempDir tmp;
    bool created = false;
    InternalCa ca = InternalCa::openOrCreate(tmp.path + "/d", "servers", created);
    InternalCa other = InternalCa::openOrCreate(tmp.path + "/d", "hub", created);
    Leaf leaf =
        ca.issue("alice", {"DNS:nb.example.org", "IP:10.1.2.3", "DNS:localhost"}, std::chrono::hours(24));

    X509Ptr cert = parse(leaf.certPem);
    REQUIRE(cert);
    CHECK(http::certificateCommonName(cert.get()) == "alice");
    CHECK(altNames(cert.get()) ==
          std::vector<std::string>{"DNS:localhost", "IP:127.0.0.1", "DNS:nb.example.org", "IP:10.1.2.3"});
    CHECK(X509_check_ca(cert.get()) == 0);
    const uint32_t eku = X509_get_extended_key_usage(cert.get());
    CHECK((eku & XKU_SSL_SERVER) != 0);
    CHECK((eku & XKU_SSL_CLIENT) != 0);
    CHECK(X509_check_private_key(cert.get(), leaf.key.get()) == 1);
    CHECK(leaf.keyPem.find("-----BEGIN PRIVATE KEY-----") == 0);
    CHECK(verify(ca.cert(), cert.get()) == X509_V_OK);
    CHECK(verify(other.cert(), cert.get()) != X509_V_OK);  // another CA's leaf does not chain
    // Valid for about the requested time, not years.
    int days = 0, seconds = 0;
    ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get()));
    CHECK(days * 86400 + seconds <= 24 * 3600 + 600);
    // A fresh key every time.
    CHECK(ca.issue("alice", {}, std::chrono::hours(1)).keyPem != leaf.keyPem);

    CHECK_THROWS_AS(ca.issue(std::string(65, 'a'), {}, std::chrono::hours(1)), InternalCaError);
    CHECK_THROWS_AS(ca.issue("", {}, std::chrono::hours(1)), InternalCaError);
    CHECK_THROWS_AS(ca.issue("alice", {"DNS:a,IP:1.2.3.4"}, std::chrono::hours(1)), InternalCaError);
    CHECK_THROWS_AS(ca.issue("alice", {"email:x@y"}, std::chrono::hours(1)), InternalCaError);
}

TEST_CASE("internal TLS handshake: hubd accepts only the expected user's server, servers only hubd") {
    TempDir tmp;
    hub::Settings settings;
    settings.internalCertsLocation = tmp.path + "/internal-ssl";
    std::vector<std::string> notes;
    InternalTls tls(settings, {"IP:::1"}, notes);
    CHECK(notes.size() == 2);

    bool created = false;
    InternalCa serversCa = InternalCa::openOrCreate(settings.internalCertsLocation, "servers", created);
    InternalCa hubCa = InternalCa::openOrCreate(settings.internalCertsLocation, "hub", created);
    CHECK_FALSE(created);
    X509Ptr hubCaCert = parse(tls.hubCaPem());
    REQUIRE(hubCaCert);

    Leaf alice = tls.issueServer("alice");
    Leaf bob = tls.issueServer("bob");
    const http::TlsClientContext& hubd = *tls.clientContext();

    // alice's server, hubd expecting alice: both sides accept.
    Handshake ok = handshake(alice, hubCaCert.get(), hubd, "alice");
    CHECK(ok.client);
    CHECK(ok.server);
    // bob's server where hubd expects alice (a reused port): refused by the CN check.
    CHECK_FALSE(handshake(bob, hubCaCert.get(), hubd, "alice").client);
    // A certificate named alice but from the hub CA: refused by the chain check.
    Leaf forged = hubCa.issue("alice", {}, std::chrono::hours(1));
    CHECK_FALSE(handshake(forged, hubCaCert.get(), hubd, "alice").client);

    // alice's server (client CA = hub CA) refuses bob's server certificate as a client.
    http::TlsClientContext bobAsClient(bob.cert.get(), bob.key.get(), serversCa.cert());
    Handshake asBob = handshake(alice, hubCaCert.get(), bobAsClient, "alice");
    CHECK_FALSE(asBob.server);
}
