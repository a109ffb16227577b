/**
 * The `realtime:` prefix of channel topics, written once. A channel named `room` is the topic
 * `realtime:room` on the socket; the server groups, stores and authorizes by the subtopic `room`,
 * and the REST broadcast API takes the subtopic.
 */

/** The prefix of every channel topic on the socket. */
export const PREFIX = "realtime:"

/** Whether `topic` carries the prefix. */
export const hasPrefix = (topic: string): boolean => topic.startsWith(PREFIX)

/** The topic of a channel name: `x` becomes `realtime:x`, `realtime:x` stays. */
export const topicOf = (name: string): string => name.startsWith(PREFIX) ? name : PREFIX + name

/** The subtopic of a topic: `realtime:x` becomes `x`, `x` stays. */
export const subTopicOf = (topic: string): string => topic.startsWith(PREFIX) ? topic.slice(PREFIX.length) : topic

/** Whether a channel name names no topic: empty, or the bare prefix. */
export const isEmpty = (name: string): boolean => name.length === 0 || name === PREFIX
