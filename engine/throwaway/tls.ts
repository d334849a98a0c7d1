import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { OperationError } from "../errors.js";

type Forge = typeof import("node-forge");
let forgeModule: Forge | undefined;
/** node-forge, loaded on first use: only `vrb local` makes certificates, every other command starts without it. */
function loadForge(): Forge {
  return (forgeModule ??= createRequire(import.meta.url)("node-forge") as Forge);
}

/**
 * TLS material of a local environment, made by the tool itself (no openssl binary needed): a private
 * CA whose key stays in the environment folder, so nodes added later get certificates from the same CA.
 */
export interface LocalCa {
  /** PEM file of the CA certificate: what clients trust (VAULT_CACERT, `caCert`, raft join's leader_ca_cert). */
  caCertPath: string;
  /** The CA's private key (0600); only the tool uses it, to issue node certificates. */
  caKeyPath: string;
}

/** One node's certificate files (listener `tls_cert_file` / `tls_key_file`) and the CA that signed them. */
export interface NodeTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function rsaKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  // Node's native key generation: fast, and no shelling out.
  const kp = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { privateKeyPem: kp.privateKey, publicKeyPem: kp.publicKey };
}

/** A positive random serial (the leading byte below 0x80 keeps the DER integer positive). */
function serial(): string {
  return "01" + randomBytes(15).toString("hex");
}

function writePrivate(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Makes a private CA in `<dir>/tls/` (ca.pem, ca-key.pem 0600); the folder is 0700. */
export function createLocalCa(dir: string, commonName = "vrb local CA"): LocalCa {
  const forge = loadForge();
  const tlsDir = join(dir, "tls");
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  const { privateKeyPem, publicKeyPem } = rsaKeyPair();
  const key = forge.pki.privateKeyFromPem(privateKeyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 5 * 365 * DAY_MS);
  const subject = [
    { name: "commonName", value: commonName },
    { name: "organizationName", value: "vault-raft-backup local environment" },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(key, forge.md.sha256.create());
  const ca: LocalCa = { caCertPath: join(tlsDir, "ca.pem"), caKeyPath: join(tlsDir, "ca-key.pem") };
  writeFileSync(ca.caCertPath, forge.pki.certificateToPem(cert), { mode: 0o644 });
  writePrivate(ca.caKeyPath, privateKeyPem);
  return ca;
}

/**
 * Issues a server certificate for a node on 127.0.0.1 (IP SAN 127.0.0.1, DNS SAN localhost) into
 * `<nodeDir>/tls/` (cert.pem, key.pem 0600), signed by the local CA.
 */
export function issueNodeCertificate(ca: LocalCa, nodeDir: string, commonName: string): NodeTlsFiles {
  const forge = loadForge();
  if (!existsSync(ca.caCertPath) || !existsSync(ca.caKeyPath)) {
    throw new OperationError(`the local CA is missing (${ca.caCertPath}, ${ca.caKeyPath}); cannot issue a certificate for ${commonName}`);
  }
  const caCert = forge.pki.certificateFromPem(readFileSync(ca.caCertPath, "utf8"));
  const caKey = forge.pki.privateKeyFromPem(readFileSync(ca.caKeyPath, "utf8"));
  const tlsDir = join(nodeDir, "tls");
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  const { privateKeyPem, publicKeyPem } = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * DAY_MS);
  cert.setSubject([{ name: "commonName", value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true, clientAuth: true },
    {
      name: "subjectAltName",
      altNames: [
        { type: 7, ip: "127.0.0.1" },
        { type: 2, value: "localhost" },
      ],
    },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  const files: NodeTlsFiles = { caFile: ca.caCertPath, certFile: join(tlsDir, "cert.pem"), keyFile: join(tlsDir, "key.pem") };
  writeFileSync(files.certFile, forge.pki.certificateToPem(cert), { mode: 0o644 });
  writePrivate(files.keyFile, privateKeyPem);
  return files;
}

/**
 * Issues a client certificate (mTLS, the cert auth method) into `<dir>/tls/` (cert.pem, key.pem
 * 0600), signed by the local CA. The same kind of certificate as a node's: its extended key usage
 * includes clientAuth.
 */
export function issueClientCertificate(ca: LocalCa, dir: string, commonName: string): NodeTlsFiles {
  return issueNodeCertificate(ca, dir, commonName);
}
