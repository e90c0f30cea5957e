// The API's routes: one table that the daemon's server and the CLI's client both read (bodies: types.ts).
export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** `:ref` stands for a name, an ID or a unique ID prefix. */
  path: string;
}

export const ROUTES = {
  ping: { method: 'GET', path: '/_ping' },
  listNetworks: { method: 'GET', path: '/networks' },
  createNetwork: { method: 'POST', path: '/networks' },
  pruneNetworks: { method: 'POST', path: '/networks/prune' },
  inspectNetwork: { method: 'GET', path: '/networks/:ref' },
  removeNetwork: { method: 'DELETE', path: '/networks/:ref' },
  connect: { method: 'POST', path: '/networks/:ref/connect' },
  disconnect: { method: 'POST', path: '/networks/:ref/disconnect' },
  listContainers: { method: 'GET', path: '/containers' },
  run: { method: 'POST', path: '/containers' },
  inspectContainer: { method: 'GET', path: '/containers/:ref/json' },
  started: { method: 'POST', path: '/containers/:ref/started' },
  exited: { method: 'POST', path: '/containers/:ref/exited' },
  stop: { method: 'POST', path: '/containers/:ref/stop' },
  start: { method: 'POST', path: '/containers/:ref/start' },
  remove: { method: 'DELETE', path: '/containers/:ref' },
  exec: { method: 'POST', path: '/containers/:ref/exec' },
  logs: { method: 'GET', path: '/containers/:ref/logs' },
  stats: { method: 'GET', path: '/stats' },
  systemPrune: { method: 'POST', path: '/system/prune' },
  systemReset: { method: 'POST', path: '/system/reset' },
  info: { method: 'GET', path: '/info' },
  events: { method: 'GET', path: '/events' },
  metrics: { method: 'GET', path: '/metrics' },
  pull: { method: 'POST', path: '/images/pull' },
  saveImages: { method: 'POST', path: '/images/save' },
  loadImages: { method: 'POST', path: '/images/load' },
  pruneImages: { method: 'POST', path: '/images/prune' },
  listImages: { method: 'GET', path: '/images' },
  inspectImage: { method: 'GET', path: '/images/:ref/json' },
  removeImage: { method: 'DELETE', path: '/images/:ref' },
  podmanServe: { method: 'POST', path: '/podman/serve' },
  podmanReload: { method: 'POST', path: '/podman/reload' },
  podmanList: { method: 'GET', path: '/podman' },
} as const satisfies Record<string, Route>;

/** The URL of `route` with `:ref` filled in (encoded) and the query's set flags (`?all=1`). */
export function routeUrl(route: Route, ref?: string, query: Record<string, boolean> = {}): string {
  const path = ref === undefined ? route.path : route.path.replace(':ref', encodeURIComponent(ref));
  const flags = Object.keys(query).filter((k) => query[k]);
  return flags.length > 0 ? `${path}?${flags.map((k) => `${k}=1`).join('&')}` : path;
}

/** A pattern that matches `route`'s paths, capturing its `:ref`. */
export function routePattern(route: Route): RegExp {
  return new RegExp('^' + route.path.replace(/:[a-z]+/g, '([^/]+)') + '$');
}
