/**
 * A real driver with some of its methods replaced, for tests that slow, fail or watch one call while the rest goes
 * to the database as usual.
 * @module
 */
import type { Driver } from '../../src/driver/driver.js';

/** For each method to replace: a function given the real method (bound to the driver) that returns its stand-in. */
export type DriverOverrides = { [K in keyof Driver]?: (real: Driver[K]) => Driver[K] };

/**
 * `driver` with the methods in `overrides` replaced; every other property reads through (methods bound to the
 * driver itself, whose private fields a proxy receiver could not reach).
 */
export function overrideDriver(driver: Driver, overrides: DriverOverrides): Driver {
  return new Proxy(driver, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      const real = typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      const override = overrides[prop as keyof Driver] as ((real: unknown) => unknown) | undefined;
      return override ? override(real) : real;
    },
  });
}
