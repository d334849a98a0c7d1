// Placeholder until the restore benchmark lands.
export async function main(_args: string[]): Promise<void> {
  process.stderr.write("bench restore: not implemented yet\n");
}
