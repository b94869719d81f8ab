import ArgumentParser
import Cluster
import CommandOptions
import Foundation

@main
struct MedSynth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medsynth",
        abstract: "GAN augmentation for imbalanced medical image datasets, on a plain CPU.",
        subcommands: [
            DataCommand.self, GANCommand.self, BalanceCommand.self, TrainCommand.self, EvaluateCommand.self,
            ExperimentCommand.self, ReproduceCommand.self, AuditCommand.self, PrivacyCommand.self, RunsCommand.self,
            ModelsCommand.self,
            ServeCommand.self, BenchCommand.self,
        ])

    /// Under `mpirun` (Sources/Cluster): MPI starts before the command and ends after it, with
    /// `MPI_Finalize` after a success and `MPI_Abort` (which stops every rank) after a failure.
    /// `experiment` (a grid of workers), `train` and `gan train` (data-parallel) run over several
    /// ranks; any other command refuses, rather than running N copies of one job into the same files.
    static func main() async {
        TerminationSignals.restore()  // first: a parent may have started us with them blocked or SIGTERM ignored
        OpenMPSettings.reexecIfNeeded()  // before any oneDNN work; see OpenMPSettings
        do {
            try Ranks.start()
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(1)
        }
        do {
            var command = try parseAsRoot(nil)
            if Ranks.size > 1 && !(command is ExperimentCommand || command is TrainCommand || command is GANCommand.Train) {
                throw ValidationError(
                    "this command does not run over several MPI ranks (\(Ranks.size) here): run it without mpirun; "
                        + "`experiment`, `train` and `gan train` are the ones that do")
            }
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Ranks.finish()
        } catch let raw {
            let error = plainFileError(raw)  // a path and a reason, not Foundation's dictionary
            guard Ranks.started else { exit(withError: error) }
            // Every rank fails alike on a bad option; print once.
            if Ranks.rank == 0 || exitCode(for: error) != .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            }
            let code = exitCode(for: error).rawValue
            if code == 0 { Ranks.finish(); Foundation.exit(0) }  // --help, --version
            // NOTE: a bad option fails every rank alike, so all of them end together; aborting
            // from rank 1 could kill rank 0 before it printed the reason (seen in MPIGridTests).
            if exitCode(for: error) == .validationFailure { Ranks.finish(); Foundation.exit(code) }
            Ranks.abort(code: code)
        }
    }
}
