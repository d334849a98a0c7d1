import type { Readable } from "node:stream";
import { BlobSASPermissions, type BlobClient, type BlockBlobClient, type ContainerClient } from "@azure/storage-blob";
import { ConfigError, VrbError } from "../../errors.js";
import { StoreCapabilityError } from "../errors.js";
import type {
  IncompleteUpload,
  ObjectDetails,
  ObjectInfo,
  ObjectLock,
  ObjectStore,
  ObjectUpload,
  OwnUploads,
  ReadOptions,
  StoreCapabilities,
  UploadOptions,
  WriteOptions,
  WrittenObject,
} from "../object-store.js";
import type { AzureConnection } from "./connect.js";
import { azureErrorInfo, conflictOf, describeAzureError, isContainerNotFound, isNotFound, storeFailure } from "./errors.js";
import { openBlobRead } from "./read.js";
import { AzureBlockUpload } from "./upload.js";
import { abortUncommittedUploads, listUncommittedUploads } from "./uncommitted-blocks.js";
import { timeoutSignal } from "../../timeout-signal.js";

/** How long checkContainer may take before the caller goes ahead without its answer. */
const CHECK_TIMEOUT_MS = 5_000;
/** Azure's largest listing page. */
const MAX_PAGE = 5_000;

export interface AzureStoreSettings {
  name: string;
  accountName: string;
  container: string;
  prefix: string;
  encryptionScope?: string;
  /** Objects per listing page (Azure's largest, 5000, unless a test wants several pages of a few). */
  pageSize?: number;
}

/**
 * A destination in an Azure Blob container (block blobs). URLs read azure://<account>/<container>/<key>.
 * Immutability is Azure's version-level immutability (a time-based policy per blob version: Unlocked
 * ~ GOVERNANCE, Locked ~ COMPLIANCE) and legal holds, where the account has them enabled.
 */
export class AzureBlobStore implements ObjectStore {
  readonly type = "azure" as const;
  readonly name: string;
  readonly container: string;
  readonly prefix: string;
  readonly capabilities: StoreCapabilities;
  private readonly client: ContainerClient;
  private readonly pageSize: number;

  constructor(
    private readonly connection: AzureConnection,
    private readonly settings: AzureStoreSettings,
  ) {
    this.name = settings.name;
    this.container = settings.container;
    this.prefix = settings.prefix;
    this.client = connection.service.getContainerClient(settings.container);
    this.pageSize = settings.pageSize ?? MAX_PAGE;
    // Azurite keeps no versions and has no immutability (501). On Azure, where an account keeps no
    // versions versions() gives one entry without a version id, so callers that delete "every
    // version" still do the right thing; a container without version-level immutability refuses a
    // lock with a StoreCapabilityError naming the setting.
    this.capabilities = {
      versions: !connection.emulator,
      lock: !connection.emulator,
      legalHold: !connection.emulator,
      // A SAS is signed with the account key, or with a user delegation key the identity asks for;
      // a connection string that is itself a SAS can sign nothing.
      presign: connection.kind !== "sas",
    };
  }

  url(key = ""): string {
    return `azure://${this.settings.accountName}/${this.container}/${key}`;
  }

  parseUrl(ref: string): { container: string; key: string } | undefined {
    const m = /^azure:\/\/([^/]+)\/([^/]+)\/(.*)$/.exec(ref);
    // Another account's blob cannot be reached with this account's credentials.
    if (!m || m[1] !== this.settings.accountName) return undefined;
    return { container: m[2]!, key: m[3]! };
  }

  withContainer(container: string): ObjectStore {
    return new AzureBlobStore(this.connection, { ...this.settings, container });
  }

  async checkContainer(opts: { field?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string | undefined> {
    try {
      await this.client.getProperties({ abortSignal: timeoutSignal(opts.timeoutMs ?? CHECK_TIMEOUT_MS, opts.signal) });
      return undefined;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      // Only Azure's own code is evidence: a bare 404 may come from a proxy or a wrong endpoint.
      if (isContainerNotFound(err)) {
        const field = opts.field ?? "destination.container";
        throw new ConfigError(
          `container '${this.container}' does not exist in storage account '${this.settings.accountName}' (${this.connection.endpoint}): ` +
            `create it (az storage container create --account-name ${this.settings.accountName} --name ${this.container} --auth-mode login) or check ${field}`,
          { field, stage: "destination", cause: err },
        );
      }
      // 403 from a role that may write blobs but not read the container's properties, a timeout: no evidence.
      return `could not check that container ${this.url()} exists (${describeAzureError(err)}); going ahead`;
    }
  }

  async list(prefix: string, opts: { signal?: AbortSignal; limit?: number } = {}): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    try {
      for await (const page of this.client.listBlobsFlat({ prefix, abortSignal: opts.signal }).byPage({ maxPageSize: this.pageSize })) {
        for (const b of page.segment.blobItems) {
          out.push({ key: b.name, bytes: b.properties.contentLength ?? 0, modified: b.properties.lastModified, version: b.versionId, etag: b.properties.etag });
          if (opts.limit !== undefined && out.length >= opts.limit) return byKey(out);
        }
      }
    } catch (err) {
      throw storeFailure("listing", this.url(prefix), err);
    }
    return byKey(out);
  }

  async listFolders(prefix: string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const page of this.client.listBlobsByHierarchy("/", { prefix, abortSignal: opts.signal }).byPage({ maxPageSize: this.pageSize })) {
        for (const p of page.segment.blobPrefixes ?? []) out.push(p.name);
      }
    } catch (err) {
      throw storeFailure("listing the folders of", this.url(prefix), err);
    }
    return out.sort();
  }

  async head(key: string, opts: { version?: string; signal?: AbortSignal } = {}): Promise<ObjectDetails | undefined> {
    try {
      const p = await this.blobAt(key, opts.version).getProperties({ abortSignal: opts.signal });
      const lock: ObjectLock = {};
      if (p.immutabilityPolicyMode === "Locked") lock.mode = "COMPLIANCE";
      else if (p.immutabilityPolicyMode === "Unlocked") lock.mode = "GOVERNANCE";
      if (lock.mode && p.immutabilityPolicyExpiresOn) lock.until = p.immutabilityPolicyExpiresOn;
      if (p.legalHold !== undefined) lock.legalHold = p.legalHold;
      return {
        key,
        bytes: p.contentLength ?? 0,
        modified: p.lastModified,
        version: p.versionId,
        etag: p.etag,
        lock: Object.keys(lock).length ? lock : undefined,
        // Azure encrypts every blob (AES-256), with the account's key or the scope's.
        encryption: p.isServerEncrypted ? { algorithm: "AES256", keyId: p.encryptionScope } : undefined,
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw storeFailure("reading the properties of", this.url(key), err);
    }
  }

  async readText(key: string, opts: { signal?: AbortSignal } = {}): Promise<{ text: string; etag?: string } | undefined> {
    try {
      const res = await this.blob(key).download(0, undefined, { abortSignal: opts.signal });
      const chunks: Buffer[] = [];
      for await (const chunk of res.readableStreamBody as Readable) chunks.push(chunk as Buffer);
      return { text: Buffer.concat(chunks).toString("utf8"), etag: res.etag };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw storeFailure("reading", this.url(key), err);
    }
  }

  async writeText(key: string, text: string, opts: WriteOptions = {}): Promise<WrittenObject> {
    const body = Buffer.from(text, "utf8");
    const conditions = opts.ifAbsent ? { ifNoneMatch: "*" } : opts.ifMatch ? { ifMatch: opts.ifMatch } : undefined;
    try {
      const put = await this.blob(key).upload(body, body.length, {
        abortSignal: opts.signal,
        conditions,
        blobHTTPHeaders: { blobContentType: opts.contentType ?? "text/plain; charset=utf-8" },
        encryptionScope: this.settings.encryptionScope,
      });
      return { key, version: put.versionId, etag: put.etag };
    } catch (err) {
      const lost = conditions && conflictOf(err, this.url(key), opts.ifAbsent ? "ifAbsent" : "ifMatch");
      if (lost) throw lost;
      throw storeFailure("writing", this.url(key), err);
    }
  }

  openRead(key: string, opts: ReadOptions = {}): Promise<{ body: Readable; bytes: number; version?: string }> {
    return openBlobRead(this.blob(key), this.url(key), opts);
  }

  createUpload(opts: UploadOptions): ObjectUpload {
    return new AzureBlockUpload({ blob: (key) => this.blob(key), url: (key) => this.url(key), encryptionScope: this.settings.encryptionScope }, opts);
  }

  listIncompleteUploads(prefix: string, opts: { signal?: AbortSignal } = {}): Promise<IncompleteUpload[]> {
    return listUncommittedUploads(this.client, this.url(prefix), prefix, opts.signal);
  }

  abortUploads(key: string, opts: { own?: OwnUploads; deadlineMs?: number } = {}): Promise<{ aborted: string[]; left: string[]; error?: string }> {
    return abortUncommittedUploads(this.blob(key), this.url(key), opts);
  }

  async versions(key: string): Promise<WrittenObject[]> {
    const out: WrittenObject[] = [];
    try {
      for await (const b of this.client.listBlobsFlat({ prefix: key, includeVersions: true })) {
        if (b.name === key) out.push({ key, version: b.versionId, etag: b.properties.etag });
      }
    } catch (err) {
      throw storeFailure("listing the versions of", this.url(key), err);
    }
    const versioned = out.filter((v) => v.version);
    if (!versioned.length) return out.slice(0, 1).map((v) => ({ key, etag: v.etag }));
    // Version ids are timestamps: newest first, as S3 lists them.
    return versioned.sort((a, b) => (a.version! < b.version! ? 1 : a.version! > b.version! ? -1 : 0));
  }

  async delete(key: string, opts: { version?: string; signal?: AbortSignal } = {}): Promise<void> {
    const url = this.url(key);
    try {
      if (opts.version) {
        // The current version cannot be deleted by its id: deleting the blob first makes it a
        // previous version, which then can be.
        const current = await this.head(key);
        if (current?.version === opts.version) await this.blob(key).deleteIfExists({ abortSignal: opts.signal });
      }
      await this.blobAt(key, opts.version).deleteIfExists({ abortSignal: opts.signal });
    } catch (err) {
      throw storeFailure(`deleting${opts.version ? ` version ${opts.version} of` : ""}`, url, err);
    }
  }

  async lock(obj: WrittenObject, mode: "GOVERNANCE" | "COMPLIANCE", until: Date): Promise<void> {
    this.needImmutability("an immutability policy");
    try {
      await this.blobAt(obj.key, obj.version).setImmutabilityPolicy({ expiriesOn: until, policyMode: mode === "COMPLIANCE" ? "Locked" : "Unlocked" });
    } catch (err) {
      throw this.immutabilityFailure("setting an immutability policy on", obj, err);
    }
  }

  async setLegalHold(obj: WrittenObject, hold: boolean): Promise<void> {
    this.needImmutability("a legal hold");
    try {
      await this.blobAt(obj.key, obj.version).setLegalHold(hold);
    } catch (err) {
      throw this.immutabilityFailure(`${hold ? "setting" : "clearing"} a legal hold on`, obj, err);
    }
  }

  /**
   * A read-only SAS URL for the blob: signed with the account key when the store has it, else a
   * user delegation SAS (the identity needs Microsoft.Storage/.../generateUserDelegationKey, part
   * of Storage Blob Data Contributor/Reader; Azure caps it at 7 days).
   */
  async presign(key: string, expiresInSeconds: number): Promise<string> {
    const expiresOn = new Date(Date.now() + expiresInSeconds * 1000);
    const permissions = BlobSASPermissions.parse("r");
    const blob = this.blob(key);
    let url: string;
    try {
      if (this.connection.sharedKey) {
        url = await blob.generateSasUrl({ permissions, expiresOn });
      } else if (this.connection.kind === "identity") {
        // Clocks drift: a SAS valid only from "now" can be refused by a server a little behind.
        const startsOn = new Date(Date.now() - 5 * 60_000);
        const delegation = await this.connection.service.getUserDelegationKey(startsOn, expiresOn);
        url = await blob.generateUserDelegationSasUrl({ permissions, startsOn, expiresOn }, delegation);
      } else {
        throw new StoreCapabilityError(
          `cannot sign a URL for ${this.url(key)}: AZURE_STORAGE_CONNECTION_STRING holds a SAS, which cannot sign another; use the account key or an identity`,
        );
      }
    } catch (err) {
      if (err instanceof VrbError) throw err;
      throw storeFailure("signing a read URL for", this.url(key), err);
    }
    // Not registered for redaction: the URL is what `vrb presign` prints; callers show others redacted (redactUrl).
    return url;
  }

  describeError(err: unknown): string {
    return describeAzureError(err);
  }

  close(): void {
    // The SDK's HTTP client keeps no per-store sockets that outlive their requests.
  }

  private blob(key: string): BlockBlobClient {
    return this.client.getBlockBlobClient(key);
  }

  private blobAt(key: string, version?: string): BlobClient {
    const blob = this.client.getBlobClient(key);
    return version ? blob.withVersion(version) : blob;
  }

  private needImmutability(what: string): void {
    if (this.capabilities.lock) return;
    throw new StoreCapabilityError(`${what} on ${this.url()}: ${this.connection.endpoint} is an emulator (Azurite), which has no immutability; a lock there would protect nothing`);
  }

  private immutabilityFailure(what: string, obj: WrittenObject, err: unknown): VrbError {
    const where = `${this.url(obj.key)}${obj.version ? ` (version ${obj.version})` : ""}`;
    const { code, status } = azureErrorInfo(err);
    // 501 from Azurite; on Azure, a container without version-level immutability support.
    if (status === 501 || (code !== undefined && /NotImplemented|NotSupported|NotEnabled|ImmutableStorageWithVersioning|FeatureNotSupported/i.test(code))) {
      return new StoreCapabilityError(
        `${what} ${where} failed: ${describeAzureError(err)}; the container needs version-level immutability support ` +
          "(az storage container-rm create --enable-vlw, on an account with blob versioning; docs/storage-azure.md)",
        { cause: err },
      );
    }
    return storeFailure(what, where, err);
  }
}

function byKey(objects: ObjectInfo[]): ObjectInfo[] {
  return objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
