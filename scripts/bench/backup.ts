// Placeholder until the backup benchmark lands.
export async function main(_args: string[]): Promise<void> {
  process.stderr.write("bench backup: not implemented yet\n");
}
