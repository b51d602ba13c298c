/**
 * Preview features through the ARM features API (Microsoft.Features). One feature has an effect:
 * `Microsoft.Compute/VMSSExtensionAutomaticUpgrade` enrolls the subscription in automatic extension
 * upgrade of its scale sets (R7); any other feature name is accepted and only recorded.
 *
 *   GET  /subscriptions/{sub}/providers/Microsoft.Features/features
 *   GET  /subscriptions/{sub}/providers/Microsoft.Features/providers/{namespace}/features
 *   GET  /subscriptions/{sub}/providers/Microsoft.Features/providers/{namespace}/features/{name}
 *   POST /subscriptions/{sub}/providers/Microsoft.Features/providers/{namespace}/features/{name}/register
 *   POST /subscriptions/{sub}/providers/Microsoft.Features/providers/{namespace}/features/{name}/unregister
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ArmContext } from '../context.js';
import { nowIso, page, writer } from '../context.js';
import { invalidParameter, notFound } from '../errors.js';
import { keyOf } from '../ids.js';

export type FeatureState = 'Registered' | 'NotRegistered' | 'Unregistered';

/** The feature whose registration enrolls a subscription's scale sets (R7). */
export const ENROLLMENT_NAMESPACE = 'Microsoft.Compute';
export const ENROLLMENT_FEATURE = 'VMSSExtensionAutomaticUpgrade';

interface FeatureDoc {
  namespace: string;
  name: string;
  state: FeatureState;
  changedAt: string;
  caller: string;
}

const BASE = '/subscriptions/:sub/providers/Microsoft.Features';
const NAMESPACE = /^[A-Za-z][A-Za-z0-9.]{0,127}$/;
const FEATURE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const featuresParent = (sub: string, namespace: string) => `/subscriptions/${sub}/providers/Microsoft.Features/providers/${namespace}`;
const featureId = (sub: string, namespace: string, name: string) => `${featuresParent(sub, namespace)}/features/${name}`;

const isEnrollment = (namespace: string, name: string) =>
  namespace.toLowerCase() === ENROLLMENT_NAMESPACE.toLowerCase() && name.toLowerCase() === ENROLLMENT_FEATURE.toLowerCase();

export function registerFeatureRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const mustHaveSubscription = (sub: string) => {
    if (!ctx.index.hasSubscription(sub)) throw notFound('SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
  };

  const checkNames = (namespace: string, name?: string) => {
    if (!NAMESPACE.test(namespace)) throw invalidParameter('resourceProviderNamespace', `'${namespace}' is not a resource provider namespace such as Microsoft.Compute.`);
    if (name !== undefined && !FEATURE_NAME.test(name)) throw invalidParameter('featureName', `'${name}' is not a valid feature name.`);
  };

  /** The subscription as the engine spells it (its scale sets' casing), so enrollment matches them. */
  const engineSubscription = (sub: string): string => {
    const want = sub.toLowerCase();
    for (const s of ctx.engine.state.enrolledSubscriptions) if (s.toLowerCase() === want) return s;
    for (const s of ctx.engine.state.fleet.scaleSets.values()) if (s.subscription.toLowerCase() === want) return s.subscription;
    return sub;
  };

  const isEnrolled = (sub: string): boolean => {
    const want = sub.toLowerCase();
    for (const s of ctx.engine.state.enrolledSubscriptions) if (s.toLowerCase() === want) return true;
    return false;
  };

  /** A feature's state: for the enrollment feature the engine's enrollment decides; otherwise what was recorded. */
  const stateOf = (sub: string, namespace: string, name: string, doc: FeatureDoc | undefined): FeatureState => {
    if (isEnrollment(namespace, name)) {
      if (isEnrolled(sub)) return 'Registered';
      return doc?.state === 'Unregistered' || doc?.state === 'Registered' ? 'Unregistered' : 'NotRegistered';
    }
    return doc?.state ?? 'NotRegistered';
  };

  const resource = (sub: string, namespace: string, name: string, state: FeatureState) => ({
    id: featureId(sub, namespace, name),
    name: `${namespace}/${name}`,
    type: 'Microsoft.Features/providers/features',
    properties: { state },
  });

  /** Names as recorded (first casing), the enrollment feature in its canonical spelling. */
  const canonical = (namespace: string, name: string, doc: FeatureDoc | undefined) =>
    isEnrollment(namespace, name) ? { namespace: ENROLLMENT_NAMESPACE, name: ENROLLMENT_FEATURE } : { namespace: doc?.namespace ?? namespace, name: doc?.name ?? name };

  const list = (sub: string, namespace: string | null) => {
    const out: Array<ReturnType<typeof resource>> = [];
    const prefix = keyOf(`/subscriptions/${sub}/providers/Microsoft.Features/providers/`);
    let sawEnrollment = false;
    for (const d of ctx.docs.ofKind<FeatureDoc>('feature')) {
      if (!keyOf(d.id).startsWith(prefix)) continue;
      if (namespace !== null && d.body.namespace.toLowerCase() !== namespace.toLowerCase()) continue;
      const c = canonical(d.body.namespace, d.body.name, d.body);
      if (isEnrollment(c.namespace, c.name)) sawEnrollment = true;
      out.push(resource(sub, c.namespace, c.name, stateOf(sub, c.namespace, c.name, d.body)));
    }
    // The enrollment feature is always offered, registered or not.
    if (!sawEnrollment && (namespace === null || namespace.toLowerCase() === ENROLLMENT_NAMESPACE.toLowerCase())) {
      out.push(resource(sub, ENROLLMENT_NAMESPACE, ENROLLMENT_FEATURE, stateOf(sub, ENROLLMENT_NAMESPACE, ENROLLMENT_FEATURE, undefined)));
    }
    return out.sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
  };

  app.get(`${BASE}/features`, async (req) => {
    const { sub } = req.params as { sub: string };
    mustHaveSubscription(sub);
    return page(ctx, req, list(sub, null));
  });

  app.get(`${BASE}/providers/:namespace/features`, async (req) => {
    const { sub, namespace } = req.params as { sub: string; namespace: string };
    mustHaveSubscription(sub);
    checkNames(namespace);
    return page(ctx, req, list(sub, namespace));
  });

  app.get(`${BASE}/providers/:namespace/features/:name`, async (req) => {
    const { sub, namespace, name } = req.params as { sub: string; namespace: string; name: string };
    mustHaveSubscription(sub);
    checkNames(namespace, name);
    const doc = ctx.docs.get<FeatureDoc>(featureId(sub, namespace, name))?.body;
    const c = canonical(namespace, name, doc);
    return resource(sub, c.namespace, c.name, stateOf(sub, namespace, name, doc));
  });

  const change = (register: boolean) => async (req: FastifyRequest) => {
    const { sub, namespace, name } = req.params as { sub: string; namespace: string; name: string };
    const caller = writer(req, `Microsoft.Features/providers/features/${register ? 'register' : 'unregister'}/action`);
    mustHaveSubscription(sub);
    checkNames(namespace, name);
    const id = featureId(sub, namespace, name);
    const doc = ctx.docs.get<FeatureDoc>(id);
    const c = canonical(namespace, name, doc?.body);
    const state: FeatureState = register ? 'Registered' : 'Unregistered';
    if (isEnrollment(namespace, name)) {
      // The engine records the change (an enrollment.changed event) and starts the catch-up rollouts.
      ctx.engine.setSubscriptionEnrollment(engineSubscription(sub), register, caller);
      ctx.runtime.kick();
    }
    const body: FeatureDoc = { namespace: c.namespace, name: c.name, state, changedAt: nowIso(ctx), caller };
    ctx.docs.put(doc?.id ?? featureId(sub, c.namespace, c.name), featuresParent(sub, c.namespace), 'feature', body);
    return resource(sub, c.namespace, c.name, stateOf(sub, namespace, name, body));
  };

  app.post(`${BASE}/providers/:namespace/features/:name/register`, change(true));
  app.post(`${BASE}/providers/:namespace/features/:name/unregister`, change(false));
}
