/**
 * The key that makes two channel configs the same channel on the wire (its bindings as sent).
 *
 * @internal
 */
import * as Config from "../../core/channel/config.js"
import * as PostgresChanges from "../../PostgresChanges.js"
import type * as Channel from "../../RealtimeChannel.js"

/** A stable text of what makes two configs the same channel on the wire. @internal */
export const configKey = (config: Channel.ChannelConfig): string => {
  // configs are readonly data, and apps tend to reuse one object for many channels
  let key = configKeys.get(config)
  if (key === undefined) {
    key = JSON.stringify(
      Config.canonical({ ...config, postgresChanges: config.postgresChanges?.map(PostgresChanges.toWire) })
    )
    configKeys.set(config, key)
  }
  return key
}
const configKeys = new WeakMap<Channel.ChannelConfig, string>()
