@main enum EmbedBenchmark { static func main() {} }
