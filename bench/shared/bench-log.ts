/** A progress logger for one bench: stderr, so that stdout holds only the report. */
export function benchLog(bench: string): (message: string) => void {
  return (message) => {
    process.stderr.write(`${bench} ${message}\n`);
  };
}
