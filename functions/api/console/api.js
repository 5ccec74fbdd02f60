// The leadpipe HTTP API, from the page's own origin. The key lives in sessionStorage: it is asked once per browser
// session, sent as "Authorization: Bearer" on every call, and forgotten when the tab closes or an answer is 401.

const KEY_ITEM = "leadpipe.apiKey";
const WORKSPACE_ITEM = "leadpipe.workspace";
const BASE = new URL(".", document.baseURI); // the API is where the page is (works behind a base path too)

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY_ITEM);
  },
  get workspace() {
    return sessionStorage.getItem(WORKSPACE_ITEM);
  },
  start(key, workspace) {
    sessionStorage.setItem(KEY_ITEM, key);
    sessionStorage.setItem(WORKSPACE_ITEM, workspace || "");
  },
  end() {
    sessionStorage.removeItem(KEY_ITEM);
    sessionStorage.removeItem(WORKSPACE_ITEM);
  },
};

let unauthorized = () => {};

/** Called with the API's message when any call answers 401 (the key was revoked, or is wrong). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function url(path, query) {
  const target = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) target.searchParams.append(name, String(one));
  }
  return target;
}

/** One API call: the parsed JSON answer, or an ApiError with the API's code and message. */
export async function call(method, path, { query, body, key, signal } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${key || session.key || ""}` };
  const init = { method, headers, signal, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network_error", "The leadpipe API cannot be reached. Is the stack running?");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  const problem = (data && data.error) || {};
  if (response.status === 401) {
    const error = new ApiError(401, problem.code || "unauthorized", problem.message || "The API key was refused.");
    if (!key) unauthorized(error.message);
    throw error;
  }
  if (!response.ok) {
    const message = problem.message || (data && data.message) || `The API answered ${response.status}.`;
    throw new ApiError(response.status, problem.code || `http_${response.status}`, message, problem.details);
  }
  return data;
}

export const get = (path, query, options) => call("GET", path, { ...options, query });
export const post = (path, body, options) => call("POST", path, { ...options, body });

export const contactPath = (email) => `contacts/${encodeURIComponent(email)}`;

/**
 * PUT a file to a presigned upload URL, reporting progress (0..1). Resolves when the storage accepted it. The body
 * is sent untyped (no Content-Type unless the URL was signed with one): a presigned URL signs the headers it names,
 * and the browser would otherwise add the file's own type.
 */
export function upload(target, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(target.method || "PUT", target.url);
    for (const [name, value] of Object.entries(target.headers || {})) request.setRequestHeader(name, value);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) {
        if (onProgress) onProgress(1);
        resolve();
      } else {
        reject(new ApiError(request.status, "upload_failed", `The upload was refused (${request.status}).`));
      }
    });
    request.addEventListener("error", () =>
      reject(new ApiError(0, "upload_failed", "The upload could not reach the storage (network or CORS).")),
    );
    request.send(file.slice(0, file.size, ""));
  });
}
