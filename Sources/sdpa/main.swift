import Foundation
import SDPACommandLine

// All the work is in SDPACommandLine, so that tests run the command in process.
exit(SDPACommandLine.main(Array(CommandLine.arguments.dropFirst()), output: .process))
